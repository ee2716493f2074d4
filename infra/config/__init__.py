"""The stage config (``infra/stages.json``): types, field checks, the rules across fields, the loader."""
