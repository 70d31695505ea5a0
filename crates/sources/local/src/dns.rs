//! Cluster DNS for the local runtime: answers A queries for Services that exist now
//! (`svc`, `svc.ns`, `svc.ns.svc`, `svc.ns.svc.cluster.local`) and NXDOMAIN for everything
//! else, on a loopback address, using hickory's DNS message types.

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{rdata::A, DNSClass, RData, Record, RecordType};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tokio::net::UdpSocket;

/// Looks up the ClusterIP of a Service.
pub trait Resolve: Send + Sync {
    fn service_ip(&self, namespace: &str, name: &str) -> Option<Ipv4Addr>;
}

/// The Service (namespace, name) a query name refers to, with the cluster's search rules.
pub fn service_of(qname: &str) -> Option<(String, String)> {
    let name = qname.trim_end_matches('.').to_ascii_lowercase();
    let parts: Vec<&str> = name.split('.').collect();
    match parts.as_slice() {
        [svc, ns, "svc", "cluster", "local"] | [svc, ns, "svc"] | [svc, ns] => {
            Some((ns.to_string(), svc.to_string()))
        }
        [svc] => Some(("default".into(), svc.to_string())),
        _ => None,
    }
}

/// The answer to one DNS query packet, or `None` when the packet is not a query.
pub fn answer(packet: &[u8], resolver: &dyn Resolve) -> Option<Vec<u8>> {
    let query = Message::from_vec(packet).ok()?;
    if query.message_type() != MessageType::Query {
        return None;
    }
    let mut resp = Message::new();
    resp.set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(query.op_code())
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(false)
        .set_authoritative(true);
    resp.add_queries(query.queries().to_vec());
    if query.op_code() != OpCode::Query || query.queries().len() != 1 {
        resp.set_response_code(ResponseCode::NotImp);
        return resp.to_vec().ok();
    }
    let q = &query.queries()[0];
    let found =
        service_of(&q.name().to_utf8()).and_then(|(ns, svc)| resolver.service_ip(&ns, &svc));
    match found {
        None => {
            resp.set_response_code(ResponseCode::NXDomain);
        }
        Some(ip) => {
            resp.set_response_code(ResponseCode::NoError);
            if q.query_type() == RecordType::A && q.query_class() == DNSClass::IN {
                resp.add_answer(Record::from_rdata(q.name().clone(), 5, RData::A(A(ip))));
            }
        }
    }
    resp.to_vec().ok()
}

/// Serves DNS on `addr` until the task is dropped.
pub async fn serve(addr: SocketAddr, resolver: Arc<dyn Resolve>) -> std::io::Result<()> {
    let sock = UdpSocket::bind(addr).await?;
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, peer) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("dns: receive failed: {e}");
                continue;
            }
        };
        if let Some(reply) = answer(&buf[..n], resolver.as_ref()) {
            if let Err(e) = sock.send_to(&reply, peer).await {
                tracing::warn!("dns: reply to {peer} failed: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;
    use std::str::FromStr;

    struct One;
    impl Resolve for One {
        fn service_ip(&self, ns: &str, name: &str) -> Option<Ipv4Addr> {
            (ns == "default" && name == "flask").then_some(Ipv4Addr::LOCALHOST)
        }
    }

    fn ask(name: &str, ty: RecordType) -> Message {
        let mut m = Message::new();
        m.set_id(7)
            .set_message_type(MessageType::Query)
            .set_recursion_desired(true);
        m.add_query(Query::query(Name::from_str(name).unwrap(), ty));
        Message::from_vec(&answer(&m.to_vec().unwrap(), &One).unwrap()).unwrap()
    }

    #[test]
    fn services_resolve_under_every_cluster_name() {
        for name in [
            "flask.",
            "flask.default.",
            "flask.default.svc.",
            "flask.default.svc.cluster.local.",
        ] {
            let r = ask(name, RecordType::A);
            assert_eq!(r.response_code(), ResponseCode::NoError, "{name}");
            assert_eq!(r.id(), 7);
            match r.answers()[0].data() {
                RData::A(a) => assert_eq!(a.0, Ipv4Addr::LOCALHOST),
                other => panic!("{other:?}"),
            }
        }
        let r = ask("flask.default.svc.cluster.local.", RecordType::AAAA);
        assert_eq!(
            (r.response_code(), r.answers().len()),
            (ResponseCode::NoError, 0)
        );
    }

    #[test]
    fn unknown_names_are_nxdomain_and_garbage_is_ignored() {
        assert_eq!(
            ask("web.default.svc.cluster.local.", RecordType::A).response_code(),
            ResponseCode::NXDomain
        );
        assert_eq!(
            ask("example.com.", RecordType::A).response_code(),
            ResponseCode::NXDomain
        );
        assert!(answer(b"\x00\x01garbage", &One).is_none());
        assert!(answer(&[], &One).is_none());
    }
}
