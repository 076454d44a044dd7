//! `TCP_NODELAY` on the PostgreSQL connections.
//!
//! sqlx 0.9.0 stopped setting it on its sockets (launchbadge/sqlx#4335, fixed upstream after that
//! release). Without it, a statement larger than what the socket sends at once (a batch of a few
//! hundred events) waits for the server's delayed ACK, ~40 ms, before its last bytes leave:
//! measured here as one instance answering 4,500 instead of 12,600 requests/s at 256 connections,
//! with the CPU two-thirds idle. Until a release sets it again, every new pool connection sets it
//! on this process's TCP sockets connected to the database's port (setting it twice, or on
//! another socket to that port, does no harm).

/// Sets `TCP_NODELAY` on every TCP socket of this process whose peer's port is `port`; how many
/// it set. Where `/proc/self/fd` does not exist it does nothing.
pub fn set_on_sockets_to_port(port: u16) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return 0;
    };
    let mut set = 0;
    for entry in entries.flatten() {
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if is_socket && peer_port(fd) == Some(port) && set_nodelay(fd) {
            set += 1;
        }
    }
    set
}

/// The port of a connected IPv4 or IPv6 stream socket's peer.
fn peer_port(fd: i32) -> Option<u16> {
    // SAFETY: getsockopt and getpeername write at most the lengths given into the local buffers;
    // a descriptor that is closed or no socket makes them fail, which is checked.
    unsafe {
        let mut kind: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        let ok = libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut kind as *mut libc::c_int).cast(),
            &mut len,
        );
        if ok != 0 || kind != libc::SOCK_STREAM {
            return None;
        }
        let mut address: libc::sockaddr_storage = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        if libc::getpeername(
            fd,
            (&mut address as *mut libc::sockaddr_storage).cast(),
            &mut len,
        ) != 0
        {
            return None;
        }
        match libc::c_int::from(address.ss_family) {
            libc::AF_INET => {
                let v4 = &*(&address as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>();
                Some(u16::from_be(v4.sin_port))
            }
            libc::AF_INET6 => {
                let v6 = &*(&address as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>();
                Some(u16::from_be(v6.sin6_port))
            }
            _ => None,
        }
    }
}

fn set_nodelay(fd: i32) -> bool {
    let on: libc::c_int = 1;
    // SAFETY: setsockopt reads one c_int from `on`; a bad descriptor makes it fail.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_nodelay_on_the_sockets_to_a_port_only() {
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let to_server = std::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
        let to_other = std::net::TcpStream::connect(other.local_addr().unwrap()).unwrap();
        assert!(!to_server.nodelay().unwrap());

        assert!(set_on_sockets_to_port(server.local_addr().unwrap().port()) >= 1);
        assert!(to_server.nodelay().unwrap());
        assert!(!to_other.nodelay().unwrap());
    }
}
