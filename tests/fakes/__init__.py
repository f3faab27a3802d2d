"""Stand-ins for external services the product talks to (only IBM Quantum is faked)."""
