"""The compliance scan of seller and auto-reply messages, and its evaluation."""
