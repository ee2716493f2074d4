"""CodeDeploy's BeforeAllowTraffic hook for the router: smoke the new version before any traffic shifts."""
