"""``python -m ops rollout``: each model version's weight and health, and the config edits that promote or roll back."""
