"""The platform core: the composition root and the business modules, free of HTTP and BentoML."""
