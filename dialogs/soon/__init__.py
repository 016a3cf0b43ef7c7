"""Services Linli announces but has not built yet. Their phrases are recognised, so
someone asking hears that the service is coming (and whom to contact meanwhile)
rather than "I don't understand". A service leaves this list when its feature lands;
today every announced service is built, so the list is empty. The catalog keeps the
services' names, which the "coming soon" answer uses.
"""

from __future__ import annotations

from dialogs.feature import Feature

FEATURE = Feature(name="soon")
