"""Test support: a throwaway PostgreSQL server, worker processes, fault injection."""
