"""``python -m ops baseline`` and ``python -m ops drift``: a model's reference statistics and its drift."""
