"""cs-metrics: TikTok Shop customer-service metrics, computed the way the guidelines define them."""

__version__ = "0.1.0"
