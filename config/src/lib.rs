//! Typed configuration shared by every node.
