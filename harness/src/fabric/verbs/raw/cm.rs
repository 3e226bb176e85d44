//! The connection manager: event channels and identifiers ([`EventChannel`], [`CmId`]).

#![allow(unsafe_code)]

use super::*;

/// An `rdma_event_channel`.
pub(in crate::fabric::verbs) struct EventChannel {
    pub(super) ptr: *mut sys::rdma_event_channel,
}

// SAFETY: librdmacm channels may be used from any thread.
unsafe impl Send for EventChannel {}
// SAFETY: as above.
unsafe impl Sync for EventChannel {}

/// A CM event, copied out of librdmacm's structure and acknowledged.
pub(in crate::fabric::verbs) struct RawCmEvent {
    /// `rdma_cm_event_type` value.
    pub event: u32,
    pub status: i32,
    /// The tag ([`CmId::set_tag`]) of the identifier it is for; for a connect request,
    /// the new identifier's (inherited from its listener, so not to be used).
    pub tag: usize,
    /// For a connect request: the new identifier, owned from now on.
    pub new_id: Option<CmId>,
    /// For a connect request: the listener's tag.
    pub listen_tag: usize,
    pub private_data: Vec<u8>,
    pub responder_resources: u8,
    pub initiator_depth: u8,
    pub rnr_retry_count: u8,
}

impl EventChannel {
    pub(in crate::fabric::verbs) fn create() -> Result<EventChannel, Errno> {
        // SAFETY: no arguments.
        let ptr = unsafe { sys::rdma_create_event_channel() };
        if ptr.is_null() {
            Err(last_errno())
        } else {
            Ok(EventChannel { ptr })
        }
    }

    pub(in crate::fabric::verbs) fn fd(&self) -> RawFd {
        // SAFETY: live channel, plain field.
        unsafe { (*self.ptr).fd }
    }

    /// Takes one event without blocking (the descriptor is non-blocking).
    pub(in crate::fabric::verbs) fn get_event(&self) -> Option<RawCmEvent> {
        let mut ev: *mut sys::rdma_cm_event = ptr::null_mut();
        // SAFETY: live channel, valid out pointer.
        if unsafe { sys::rdma_get_cm_event(self.ptr, &mut ev) } != 0 || ev.is_null() {
            return None;
        }
        // SAFETY: `ev` is a live event until acknowledged below; everything is copied.
        let out = unsafe {
            let e = &*ev;
            let conn = e.param.conn;
            let private_data = if conn.private_data.is_null() || conn.private_data_len == 0 {
                Vec::new()
            } else {
                std::slice::from_raw_parts(
                    conn.private_data.cast::<u8>(),
                    usize::from(conn.private_data_len),
                )
                .to_vec()
            };
            let is_request = e.event == sys::rdma_cm_event_type::RDMA_CM_EVENT_CONNECT_REQUEST;
            RawCmEvent {
                event: e.event,
                status: e.status,
                tag: if e.id.is_null() {
                    0
                } else {
                    (*e.id).context as usize
                },
                new_id: is_request.then(|| CmId { ptr: e.id }),
                listen_tag: if e.listen_id.is_null() {
                    0
                } else {
                    (*e.listen_id).context as usize
                },
                private_data,
                responder_resources: conn.responder_resources,
                initiator_depth: conn.initiator_depth,
                rnr_retry_count: conn.rnr_retry_count,
            }
        };
        // SAFETY: acknowledged once, after the copy.
        unsafe { sys::rdma_ack_cm_event(ev) };
        Some(out)
    }
}

impl Drop for EventChannel {
    fn drop(&mut self) {
        // SAFETY: live channel; every identifier on it was destroyed first (the owner's
        // drop order).
        unsafe { sys::rdma_destroy_event_channel(self.ptr) };
    }
}

/// An `rdma_cm_id` (RDMA_PS_TCP).
pub(in crate::fabric::verbs) struct CmId {
    pub(super) ptr: *mut sys::rdma_cm_id,
}

// SAFETY: librdmacm identifiers may be used from any thread.
unsafe impl Send for CmId {}
// SAFETY: as above.
unsafe impl Sync for CmId {}

/// Connection parameters for `rdma_connect` / `rdma_accept`.
pub(in crate::fabric::verbs) struct RawConnParam<'a> {
    pub private_data: &'a [u8],
    pub responder_resources: u8,
    pub initiator_depth: u8,
    pub rnr_retry_count: u8,
    pub qp_num: u32,
}

fn sockaddr_in(addr: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*addr.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

impl CmId {
    pub(in crate::fabric::verbs) fn create(channel: &EventChannel) -> Result<CmId, Errno> {
        let mut id = ptr::null_mut();
        // SAFETY: live channel, valid out pointer.
        rc(unsafe {
            sys::rdma_create_id(
                channel.ptr,
                &mut id,
                ptr::null_mut(),
                sys::rdma_port_space::RDMA_PS_TCP,
            )
        })?;
        Ok(CmId { ptr: id })
    }

    /// Tags the identifier: its events carry `tag` from now on. Events are matched to
    /// connections by tag, never by pointer, which librdmacm may reuse for a new
    /// identifier once an old one is destroyed.
    pub(in crate::fabric::verbs) fn set_tag(&self, tag: usize) {
        // SAFETY: live id; `context` is a field for the user that librdmacm only copies
        // (into events, and into identifiers a listener creates).
        unsafe { (*self.ptr).context = tag as *mut libc::c_void };
    }

    pub(in crate::fabric::verbs) fn bind(&self, addr: SocketAddrV4) -> Result<(), Errno> {
        let mut sin = sockaddr_in(addr);
        // SAFETY: live id; `sin` is a valid sockaddr_in for the call.
        rc(unsafe { sys::rdma_bind_addr(self.ptr, (&mut sin as *mut libc::sockaddr_in).cast()) })
    }

    pub(in crate::fabric::verbs) fn listen(&self, backlog: i32) -> Result<(), Errno> {
        // SAFETY: live, bound id.
        rc(unsafe { sys::rdma_listen(self.ptr, backlog) })
    }

    pub(in crate::fabric::verbs) fn resolve_addr(
        &self,
        src: Option<SocketAddrV4>,
        dst: SocketAddrV4,
        timeout_ms: i32,
    ) -> Result<(), Errno> {
        let mut s = src.map(sockaddr_in);
        let mut d = sockaddr_in(dst);
        let sp = s
            .as_mut()
            .map_or(ptr::null_mut(), |s| (s as *mut libc::sockaddr_in).cast());
        // SAFETY: live id; the addresses live across the call.
        rc(unsafe {
            sys::rdma_resolve_addr(
                self.ptr,
                sp,
                (&mut d as *mut libc::sockaddr_in).cast(),
                timeout_ms,
            )
        })
    }

    pub(in crate::fabric::verbs) fn resolve_route(&self, timeout_ms: i32) -> Result<(), Errno> {
        // SAFETY: live id with a resolved address.
        rc(unsafe { sys::rdma_resolve_route(self.ptr, timeout_ms) })
    }

    fn conn_param(p: &RawConnParam<'_>) -> sys::rdma_conn_param {
        sys::rdma_conn_param {
            private_data: if p.private_data.is_empty() {
                ptr::null()
            } else {
                p.private_data.as_ptr().cast()
            },
            private_data_len: u8::try_from(p.private_data.len()).unwrap_or(u8::MAX),
            responder_resources: p.responder_resources,
            initiator_depth: p.initiator_depth,
            flow_control: 1,
            retry_count: 7,
            rnr_retry_count: p.rnr_retry_count,
            srq: 0,
            qp_num: p.qp_num,
        }
    }

    pub(in crate::fabric::verbs) fn connect(&self, p: &RawConnParam<'_>) -> Result<(), Errno> {
        let mut param = Self::conn_param(p);
        // SAFETY: live id with a resolved route; the private data outlives the call.
        rc(unsafe { sys::rdma_connect(self.ptr, &mut param) })
    }

    pub(in crate::fabric::verbs) fn establish(&self) -> Result<(), Errno> {
        // SAFETY: live id that received a connect response.
        rc(unsafe { sys::rdma_establish(self.ptr) })
    }

    pub(in crate::fabric::verbs) fn accept(&self, p: &RawConnParam<'_>) -> Result<(), Errno> {
        let mut param = Self::conn_param(p);
        // SAFETY: live id from a connect request; the private data outlives the call.
        rc(unsafe { sys::rdma_accept(self.ptr, &mut param) })
    }

    pub(in crate::fabric::verbs) fn reject(&self, private_data: &[u8]) -> Result<(), Errno> {
        let p = if private_data.is_empty() {
            ptr::null()
        } else {
            private_data.as_ptr().cast()
        };
        let len = u8::try_from(private_data.len()).unwrap_or(u8::MAX);
        // SAFETY: live id from a connect request; the data outlives the call.
        rc(unsafe { sys::rdma_reject(self.ptr, p, len) })
    }

    pub(in crate::fabric::verbs) fn disconnect(&self) -> Result<(), Errno> {
        // SAFETY: live id.
        rc(unsafe { sys::rdma_disconnect(self.ptr) })
    }

    /// The peer's address (IPv4), as the route holds it.
    pub(in crate::fabric::verbs) fn peer_addr(&self) -> Option<SocketAddr> {
        // SAFETY: live id; the route's destination address is a sockaddr of the family
        // it names, read as sockaddr_in only for AF_INET.
        unsafe {
            let sa = sys::rdma_get_peer_addr(&*self.ptr);
            if i32::from(sa.sa_family) != libc::AF_INET {
                return None;
            }
            let sin = &*(sa as *const libc::sockaddr).cast::<libc::sockaddr_in>();
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
    }
}

impl Drop for CmId {
    fn drop(&mut self) {
        // SAFETY: live id, destroyed once; its events were acknowledged as read.
        unsafe { sys::rdma_destroy_id(self.ptr) };
    }
}
