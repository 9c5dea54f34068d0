"""Notifications: VAPID keys now; events, push delivery and the notification centre later."""
