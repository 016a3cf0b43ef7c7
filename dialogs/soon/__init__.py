"""Services Linli announces but has not built yet. Their phrases are recognised, so
someone asking hears that the service is coming (and whom to contact meanwhile)
rather than "I don't understand". A service leaves this list when its feature lands.
"""

from __future__ import annotations

from dialogs.feature import Feature, Intent

FEATURE = Feature(
    name="soon",
    intents=(
        Intent(
            "stations",
            (
                "找驿站",
                "驿站",
                "休息",
                "歇脚",
                "喝水",
                "充电",
                "热饭",
                "微波炉",
                "厕所",
                "户外工作者驿站",
                "小哥食堂",
                "司机之家",
                "附近驿站",
                "rest station",
                "find a station",
                "stations",
                "rest",
                "water",
                "charge my phone",
                "microwave",
                "toilet",
                "where can i rest",
            ),
        ),
        Intent("notice", ("发通知", "通知", "公告", "send a notice", "notice", "announcement")),
    ),
)
