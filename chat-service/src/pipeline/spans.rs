//! The batch's part of each message's trace (service_kit::trace): one
//! `chat.message` span per stored message, a child of its gateway's `send`
//! span, open while the batch runs. Their traceparents go on to
//! history-service and to the delivering gateways.

use tracing::Span;

use super::admit::Accepted;

pub(crate) struct MessageSpans {
    _spans: Vec<Span>,
    /// Per stored message (same order), its span's traceparent.
    pub parents: Vec<Option<String>>,
}

impl MessageSpans {
    pub(crate) fn open(stored: &[Accepted]) -> Self {
        if !service_kit::trace::enabled() {
            return Self {
                _spans: Vec::new(),
                parents: vec![None; stored.len()],
            };
        }
        let (spans, parents) = stored
            .iter()
            .map(|a| {
                let span = tracing::info_span!("chat.message", conversation = %a.conversation);
                service_kit::trace::set_parent(&span, a.entry.trace.as_deref());
                let parent = service_kit::trace::traceparent(&span);
                (span, parent)
            })
            .unzip();
        Self {
            _spans: spans,
            parents,
        }
    }

    /// The context a batch-wide call carries: the first traced message's
    /// (one call serves many messages; the others' traces end in this
    /// service).
    pub(crate) fn first(&self) -> Option<&str> {
        self.parents.iter().flatten().next().map(String::as_str)
    }
}
