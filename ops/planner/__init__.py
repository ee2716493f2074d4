"""The capacity planner behind ``python -m ops plan``: replay a request trace through a simulation of each
serving option per model and recommend the cheapest one that meets the stage's p99 target."""
