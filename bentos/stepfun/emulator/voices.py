"""The official StepFun voice ids (shared/reference/stepfun-api.md §3) and their system_voices details."""

from __future__ import annotations

from typing import Any

# id → (name, description); names are the Chinese display names the ids spell in pinyin [?].
OFFICIAL_VOICES: dict[str, tuple[str, str]] = {
    "elegantgentle-female": ("Elegant Gentle Female", "elegant, gentle female voice"),
    "livelybreezy-female": ("Lively Breezy Female", "lively, breezy female voice"),
    "wenrounansheng": ("温柔男声", "gentle male voice"),
    "wenrougongzi": ("温柔公子", "gentle young gentleman"),
    "yuanqinansheng": ("元气男声", "energetic male voice"),
    "jingdiannvsheng": ("经典女声", "classic female voice"),
    "wenroushunv": ("温柔淑女", "gentle lady"),
    "tianmeinvsheng": ("甜美女声", "sweet female voice"),
    "qingchunshaonv": ("青春少女", "youthful girl"),
    "cixingnansheng": ("磁性男声", "magnetic male voice"),
    "yuanqishaonv": ("元气少女", "energetic girl"),
    "linjiajiejie": ("邻家姐姐", "girl-next-door, older sister"),
    "zhengpaiqingnian": ("正派青年", "upright young man"),
    "qingniandaxuesheng": ("青年大学生", "young university student"),
    "boyinnansheng": ("播音男声", "male announcer"),
    "ruyananshi": ("儒雅男士", "refined gentleman"),
    "shenchennanyin": ("深沉男音", "deep male voice"),
    "qinqienvsheng": ("亲切女声", "warm, friendly female voice"),
    "wenrounvsheng": ("温柔女声", "gentle female voice"),
    "jilingshaonv": ("机灵少女", "clever girl"),
    "ruanmengnvsheng": ("软萌女声", "soft, cute female voice"),
    "youyanvsheng": ("优雅女声", "graceful female voice"),
    "lengyanyujie": ("冷艳御姐", "cool, mature woman"),
    "shuangkuaijiejie": ("爽快姐姐", "straightforward older sister"),
    "wenjingxuejie": ("文静学姐", "quiet senior schoolmate"),
    "linjiameimei": ("邻家妹妹", "girl-next-door, younger sister"),
    "zhixingjiejie": ("知性姐姐", "intellectual older sister"),
}


def system_voices_payload() -> dict[str, Any]:
    """GET /v1/audio/system_voices body: the same set for every model."""
    return {
        "voices": list(OFFICIAL_VOICES),
        "voices-details": {
            vid: {"voice-name": name, "voice-description": desc, "recommended_scene": "general"}
            for vid, (name, desc) in OFFICIAL_VOICES.items()
        },
    }
