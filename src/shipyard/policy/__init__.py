"""Policy as code: rule specs, their evaluators, gates and access control."""
