"""The VoxPersona front end: a Streamlit app that talks only to the platform's HTTP API."""
