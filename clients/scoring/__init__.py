"""Value scoring (数量-质量-效益): schemes, runs, per-client scores. See DOMAIN.md."""
