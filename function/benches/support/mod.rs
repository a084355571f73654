//! Prometheus `/api/v1/query` bodies shaped like kafka_exporter's `kafka_consumergroup_lag`.

use std::fmt::Write as _;

/// A successful instant-vector body with `series` distinct series, labelled as kafka_exporter
/// labels them, in the order and spacing Prometheus writes. One series in 500 reports `-1`
/// (a group that never committed), as real clusters do.
pub fn vector_body(series: usize) -> Vec<u8> {
    let mut body = String::with_capacity(series * 240 + 64);
    body.push_str(r#"{"status":"success","data":{"resultType":"vector","result":["#);
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..series {
        if i > 0 {
            body.push(',');
        }
        // A cheap deterministic spread of lag values, from zero to tens of millions.
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let lag = (state >> 40) % 40_000_000;
        let value = if i % 500 == 499 {
            "-1".to_owned()
        } else {
            lag.to_string()
        };
        let group = i / 2_000;
        let topic = (i / 100) % 20;
        let partition = i % 100;
        let instance = i % 3;
        write!(
            body,
            concat!(
                r#"{{"metric":{{"__name__":"kafka_consumergroup_lag","#,
                r#""consumergroup":"orders-consumer-{group:03}","#,
                r#""instance":"kafka-exporter-{instance}.monitoring.svc:9308","#,
                r#""job":"kafka-exporter","partition":"{partition}","#,
                r#""topic":"orders.events.v{topic}"}},"value":[1764790000.123,"{value}"]}}"#,
            ),
            group = group,
            instance = instance,
            partition = partition,
            topic = topic,
            value = value,
        )
        .expect("writing to a String cannot fail");
    }
    body.push_str("]}}");
    body.into_bytes()
}

/// The same answer as [`vector_body`], written with a space after every `:` and `,` between
/// strings, as a proxy that re-encodes JSON may write it: no label set is then its own key,
/// so each is read label by label and copied out.
pub fn spaced_vector_body(series: usize) -> Vec<u8> {
    String::from_utf8(vector_body(series))
        .expect("the body is UTF-8")
        .replace(r#"":""#, r#"": ""#)
        .replace(r#"",""#, r#"", ""#)
        .into_bytes()
}
