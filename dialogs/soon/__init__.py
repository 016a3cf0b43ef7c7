"""Services Linli announces but has not built yet. Their phrases are recognised, so
someone asking hears that the service is coming (and whom to contact meanwhile)
rather than "I don't understand". A service leaves this list when its feature lands.
"""

from __future__ import annotations

from dialogs.feature import Feature, Intent

FEATURE = Feature(
    name="soon",
    intents=(Intent("notice", ("发通知", "通知", "公告", "send a notice", "notice", "announcement")),),
)
