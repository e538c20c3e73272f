//! A TCP proxy to put between a store and its server in fault tests: cut the link, check that
//! calls fail fast with a transient error, restore it, and check that the same store (the same
//! pool or client) works again. The shared server itself is never stopped.
//!
//! The proxy listens on `127.0.0.1` (a free port) and forwards byte streams both ways to one
//! upstream address. [`TcpProxy::cut`] takes the link down in one of three ways
//! ([`CutMode`]); [`TcpProxy::restore`] brings it back. Dropping the proxy stops it and closes
//! every connection through it.
//!
//! It runs on threads of its own (blocking `std::net` sockets, two per forwarded connection),
//! so it works in any async runtime or none, and a test that stalls its own runtime cannot
//! stall the proxy. It is meant for tests: a handful of connections, not a load balancer.
//!
//! ```no_run
//! # async fn run() {
//! use ecommerce_core::testkit::proxy::{CutMode, TcpProxy};
//!
//! let proxy = TcpProxy::start("127.0.0.1:5432".parse().expect("address"));
//! let url = format!("postgres://postgres@{}/test", proxy.addr());
//! // Connect the store to `url`, write, read...
//! proxy.cut(CutMode::Blackhole);
//! // ...a call now fails with a transient error within the store's configured timeouts...
//! proxy.restore();
//! // ...and succeeds again on the same pool, once it has reconnected.
//! # let _ = url;
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// How long the proxy waits to open its own connection to the upstream.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How a cut link behaves, from the client's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CutMode {
    /// A server whose process is gone: open connections are closed, and new ones are accepted
    /// and closed at once (the client reads end of stream or a reset, immediately).
    Refuse,
    /// A host that is down, or a firewall that drops packets: open connections are closed, and
    /// new ones are accepted but never answered (the client waits for its own timeout).
    Blackhole,
    /// A network partition: open connections stay open but go silent (whatever is sent is
    /// swallowed, nothing comes back), and new ones are black-holed. Only client-side timeouts
    /// get a caller out; a server-side statement timeout never hears of the statement.
    Partition,
}

/// A TCP proxy to one upstream address, that a test can cut and restore. Stopped on drop.
///
/// See the [module documentation](self).
pub struct TcpProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl fmt::Debug for TcpProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("TcpProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.shared.upstream)
            .field("cut", &state.cut)
            .field("open", &state.links.len())
            .field("held", &state.held.len())
            .finish()
    }
}

struct Shared {
    upstream: SocketAddr,
    stopped: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    cut: Option<CutMode>,
    /// Bumped by every cut: a connection accepted before a cut never starts forwarding after it.
    epoch: u64,
    next_id: u64,
    /// Forwarded connections.
    links: HashMap<u64, Link>,
    /// Connections accepted while black-holed: kept open, never read.
    held: Vec<TcpStream>,
}

struct Link {
    client: TcpStream,
    upstream: TcpStream,
    /// Set by a [`CutMode::Partition`] cut: the pumps read and drop instead of forwarding.
    silent: Arc<AtomicBool>,
}

impl Link {
    fn close(&self) {
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.upstream.shutdown(Shutdown::Both);
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl TcpProxy {
    /// Starts a proxy to `upstream`, listening on `127.0.0.1` on a free port
    /// ([`TcpProxy::addr`]), forwarding.
    ///
    /// # Panics
    /// When no local port can be bound (this is test tooling).
    pub fn start(upstream: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy on 127.0.0.1");
        let addr = listener.local_addr().expect("the proxy's address");
        let shared = Arc::new(Shared {
            upstream,
            stopped: AtomicBool::new(false),
            state: Mutex::new(State::default()),
        });
        let acceptor = {
            let shared = shared.clone();
            thread::Builder::new()
                .name(format!("tcp-proxy-{}", addr.port()))
                .spawn(move || accept_loop(&listener, &shared))
                .expect("spawn the proxy thread")
        };
        TcpProxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The address to connect to instead of the upstream.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The upstream address.
    pub fn upstream(&self) -> SocketAddr {
        self.shared.upstream
    }

    /// Takes the link down: [`CutMode::Refuse`] and [`CutMode::Blackhole`] close every open
    /// connection, [`CutMode::Partition`] silences them; new connections are then refused or
    /// black-holed until [`TcpProxy::restore`]. Cutting a cut proxy switches its mode.
    pub fn cut(&self, mode: CutMode) {
        let mut state = self.shared.lock();
        state.cut = Some(mode);
        state.epoch += 1;
        match mode {
            CutMode::Refuse | CutMode::Blackhole => {
                for (_, link) in state.links.drain() {
                    link.close();
                }
            }
            CutMode::Partition => {
                for link in state.links.values() {
                    link.silent.store(true, Ordering::SeqCst);
                }
            }
        }
        if mode == CutMode::Refuse {
            for held in state.held.drain(..) {
                let _ = held.shutdown(Shutdown::Both);
            }
        }
    }

    /// Forwards again. Connections that were black-holed or silenced are closed first (bytes
    /// sent into the cut were dropped, so their protocol state is lost, as after a server
    /// restart); the client reconnects through the restored link.
    pub fn restore(&self) {
        let mut state = self.shared.lock();
        state.cut = None;
        for held in state.held.drain(..) {
            let _ = held.shutdown(Shutdown::Both);
        }
        state.links.retain(|_, link| {
            let silent = link.silent.load(Ordering::SeqCst);
            if silent {
                link.close();
            }
            !silent
        });
    }

    /// How the link is cut, or `None` while it forwards.
    pub fn cut_mode(&self) -> Option<CutMode> {
        self.shared.lock().cut
    }

    /// Connections being forwarded (or, during a partition, silenced) right now.
    pub fn open_connections(&self) -> usize {
        self.shared.lock().links.len()
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        {
            let mut state = self.shared.lock();
            for (_, link) in state.links.drain() {
                link.close();
            }
            for held in state.held.drain(..) {
                let _ = held.shutdown(Shutdown::Both);
            }
        }
        // Wake the acceptor blocked in `accept`, so it sees `stopped` and returns.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for incoming in listener.incoming() {
        if shared.stopped.load(Ordering::SeqCst) {
            return;
        }
        let client = match incoming {
            Ok(client) => client,
            Err(_) => {
                // Out of descriptors or an aborted handshake: do not spin.
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let epoch = {
            let mut state = shared.lock();
            match state.cut {
                Some(CutMode::Refuse) => {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                Some(CutMode::Blackhole | CutMode::Partition) => {
                    state.held.push(client);
                    continue;
                }
                None => state.epoch,
            }
        };
        let shared = shared.clone();
        let _ = thread::Builder::new()
            .name("tcp-proxy-link".into())
            .spawn(move || link(client, epoch, &shared));
    }
}

/// Opens the upstream side of an accepted connection and forwards until either side closes.
fn link(client: TcpStream, epoch: u64, shared: &Arc<Shared>) {
    let Ok(upstream) = TcpStream::connect_timeout(&shared.upstream, UPSTREAM_CONNECT_TIMEOUT)
    else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let silent = Arc::new(AtomicBool::new(false));
    let clones = (
        client.try_clone(),
        upstream.try_clone(),
        client.try_clone(),
        upstream.try_clone(),
    );
    let (Ok(client_read), Ok(upstream_read), Ok(client_control), Ok(upstream_control)) = clones
    else {
        let _ = client.shutdown(Shutdown::Both);
        let _ = upstream.shutdown(Shutdown::Both);
        return;
    };
    let id = {
        let mut state = shared.lock();
        if shared.stopped.load(Ordering::SeqCst) || state.epoch != epoch {
            // Cut (or stopped) while the upstream side was being opened: as if it were open
            // at the cut.
            match state.cut {
                Some(CutMode::Blackhole | CutMode::Partition) => state.held.push(client),
                Some(CutMode::Refuse) | None => {
                    let _ = client.shutdown(Shutdown::Both);
                }
            }
            let _ = upstream.shutdown(Shutdown::Both);
            return;
        }
        let id = state.next_id;
        state.next_id += 1;
        state.links.insert(
            id,
            Link {
                client: client_control,
                upstream: upstream_control,
                silent: silent.clone(),
            },
        );
        id
    };
    let back = {
        let (shared, silent) = (shared.clone(), silent.clone());
        thread::Builder::new()
            .name("tcp-proxy-pump".into())
            .spawn(move || pump(upstream_read, client, &silent, &shared, id))
    };
    if back.is_err() {
        if let Some(link) = shared.lock().links.remove(&id) {
            link.close();
        }
        return;
    }
    pump(client_read, upstream, &silent, shared, id);
}

/// Copies `from` to `to` until either ends, dropping the bytes while `silent`; then closes the
/// pair.
fn pump(mut from: TcpStream, mut to: TcpStream, silent: &AtomicBool, shared: &Shared, id: u64) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if silent.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
    shared.lock().links.remove(&id);
}
