"""Access: the one policy for health data, the audit log, and acting for someone else."""
