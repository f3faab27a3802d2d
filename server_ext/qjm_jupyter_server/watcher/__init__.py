"""The background watcher: IBM Quantum client, transition rules, poller."""
