"""Serving a finished run: the Ray Serve application (app), its HTTP plumbing (http), deploy files (deploy)."""
