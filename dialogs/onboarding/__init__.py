"""Onboarding: /start asks for consent first (the PIPL requires it), then language,
community and building, and optionally a phone number. Nothing personal is stored
before consent. Every other feature waits until this one is done."""

from __future__ import annotations

from dialogs.feature import Feature
from dialogs.onboarding.flow import FLOW

FEATURE = Feature(name="onboarding", flows=(FLOW,))
