"""The patient's shell: overview, the tab pages, the menu and settings."""
