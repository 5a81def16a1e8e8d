"""trakr: course-section alerts, from a schedule of classes to an FCM topic."""

from __future__ import annotations

__version__ = "0.1.0"
