//! The export format: JSON lines.
