//! The `show stat` CSV of the admin socket, parsed by column name (not position):
//! one row per server (`ServerStat`), and the balancer's own counters (`Counters`).

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// One server's row of `show stat`, the fields a roll needs (and every field by name).
#[derive(Debug, Clone, Default)]
pub(crate) struct ServerStat {
    /// `svname` (`s1`, ..., or `BACKEND`).
    pub name: String,
    /// Requests queued for the server.
    pub qcur: u64,
    /// Sessions on the server now.
    pub scur: u64,
    /// Failed connects to the server.
    pub econ: u64,
    /// Response errors.
    pub eresp: u64,
    /// Connect retries (hidden from the client).
    pub wretr: u64,
    /// Redispatches to another server (hidden from the client).
    pub wredis: u64,
    /// `status`: UP, DOWN, DRAIN, NOLB, MAINT, `UP 1/2`, ...
    pub status: String,
    /// `check_status` without the `* ` (check in progress) prefix: L7OK, L4CON, ...
    pub check_status: String,
    /// `check_health` (rise + fall - 1 when fully up).
    pub check_health: u64,
    /// 5xx responses.
    pub hrsp_5xx: u64,
    /// Every column, by name.
    pub fields: BTreeMap<String, String>,
}

/// Parses `show stat` CSV (header `# pxname,svname,...`).
pub(crate) fn parse_stat(csv: &str) -> Result<Vec<ServerStat>> {
    let mut lines = csv.lines();
    let header = lines
        .next()
        .and_then(|h| h.strip_prefix("# "))
        .ok_or_else(|| Error::Step(format!("haproxy show stat: no CSV header in {csv:?}")))?;
    let names: Vec<&str> = header.split(',').collect();
    let mut out = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let fields: BTreeMap<String, String> = names
            .iter()
            .zip(line.split(','))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let num = |k: &str| fields.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
        let text = |k: &str| fields.get(k).cloned().unwrap_or_default();
        out.push(ServerStat {
            name: text("svname"),
            qcur: num("qcur"),
            scur: num("scur"),
            econ: num("econ"),
            eresp: num("eresp"),
            wretr: num("wretr"),
            wredis: num("wredis"),
            status: text("status"),
            check_status: text("check_status").trim_start_matches("* ").to_string(),
            check_health: num("check_health"),
            hrsp_5xx: num("hrsp_5xx"),
            fields,
        });
    }
    Ok(out)
}

/// The balancer's own counters: what it retried or failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    /// Connect retries.
    pub wretr: u64,
    /// Redispatches.
    pub wredis: u64,
    /// Failed connects.
    pub econ: u64,
    /// Response errors.
    pub eresp: u64,
    /// 5xx responses (haproxy's own 503s included).
    pub hrsp_5xx: u64,
}

impl Counters {
    /// The counters of a `show stat` row.
    pub fn of(s: &ServerStat) -> Counters {
        Counters {
            wretr: s.wretr,
            wredis: s.wredis,
            econ: s.econ,
            eresp: s.eresp,
            hrsp_5xx: s.hrsp_5xx,
        }
    }

    /// `self - earlier`, per counter.
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            wretr: self.wretr.saturating_sub(earlier.wretr),
            wredis: self.wredis.saturating_sub(earlier.wredis),
            econ: self.econ.saturating_sub(earlier.econ),
            eresp: self.eresp.saturating_sub(earlier.eresp),
            hrsp_5xx: self.hrsp_5xx.saturating_sub(earlier.hrsp_5xx),
        }
    }
}

impl std::fmt::Display for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "wretr={} wredis={} econ={} eresp={} hrsp_5xx={}",
            self.wretr, self.wredis, self.econ, self.eresp, self.hrsp_5xx
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_show_stat_by_column_name() {
        let csv = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,\n\
be,s1,0,0,2,3,,10,0,0,,0,,1,0,2,1,DRAIN,1,1,0,1,0,5,0,,1,3,1,,10,,2,0,,3,* L7OK,200,1,0,10,0,0,4,\n\
be,BACKEND,1,0,2,3,,10,0,0,0,0,,5,0,2,1,UP,1,1,0,,0,5,0,,1,3,0,,10,,1,0,,3,,,,0,10,0,0,6,\n";
        let rows = parse_stat(csv).unwrap();
        assert_eq!(rows.len(), 2);
        let s1 = &rows[0];
        assert_eq!((s1.name.as_str(), s1.scur, s1.qcur), ("s1", 2, 0));
        assert_eq!(
            (s1.status.as_str(), s1.check_status.as_str()),
            ("DRAIN", "L7OK")
        );
        assert_eq!((s1.econ, s1.wretr, s1.wredis, s1.hrsp_5xx), (1, 2, 1, 4));
        let b = Counters::of(&rows[1]);
        let d = b.since(&Counters {
            econ: 2,
            ..Counters::default()
        });
        assert_eq!(d.econ, 3);
        assert_eq!(d.to_string(), "wretr=2 wredis=1 econ=3 eresp=0 hrsp_5xx=6");
        assert!(parse_stat("Unknown command\n").is_err());
    }
}
