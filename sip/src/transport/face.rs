//! Which side of the network a listener faces.

/// The side a listener faces, for nodes reached at different addresses from each side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Face {
    /// UEs and peers: the listeners of `[sip]`.
    Main,
    /// The node's core peers: the listeners of `[sip.core]`. When a node has them, the
    /// requests it sends to a destination (not back over a flow) leave from them.
    Core,
}
