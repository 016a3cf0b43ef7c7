"""The feature list: every service Linli offers, in one place.

Adding a feature is a package under dialogs/ exporting ``FEATURE``, its tables and
record operations in storage/<feature>.py, a migration, and one line here (see
CONTRIBUTING.md). The order is the order of /mydata sections and of the phrases
tried for free text.
"""

from __future__ import annotations

from dialogs import account, applications, legal, notices, onboarding, reports, rides, soon, stations
from dialogs.feature import Feature

FEATURES: tuple[Feature, ...] = (
    onboarding.FEATURE,
    account.FEATURE,
    applications.FEATURE,
    rides.FEATURE,
    reports.FEATURE,
    legal.FEATURE,
    stations.FEATURE,
    notices.FEATURE,
    soon.FEATURE,
)
