"""What every page shares: htmx handling, security headers, errors, assets, the login gate."""
