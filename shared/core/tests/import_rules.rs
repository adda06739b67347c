//! The import rules, table by table, through the public API: profile + bytes in, daily items
//! (or refusals with line, column, value and reason) out.

use chrono::NaiveDate;
use reimport_core::{
    read_file, DailyItem, Dimension, Error, ImportProfile, ItemOrder, Metric, ProfileLimits, Quantity, ReadOptions,
    TextEncoding, ValidatedFile,
};

fn profile(
    kind: &str,
    dims: &[(usize, &str)],
    metrics: &[(usize, &str)],
    from: &str,
    to: &str,
    extra: &str,
) -> ImportProfile {
    let cols = |c: &[(usize, &str)]| {
        c.iter()
            .map(|(i, t)| format!(r#"{{"idx":{i},"target":"{t}"}}"#))
            .collect::<Vec<_>>()
            .join(",")
    };
    let json = format!(
        r#"{{"skipHeader":true,"kind":"{kind}","dimensions":[{}],"metrics":[{}],"period":{{"from":"{from}","to":"{to}","scale":"D"}}{extra}}}"#,
        cols(dims),
        cols(metrics)
    );
    ImportProfile::from_json(&json, &ProfileLimits::default()).unwrap()
}

fn website(metrics: &[(usize, &str)], from: &str, to: &str) -> ImportProfile {
    profile("website", &[(0, "website_name")], metrics, from, to, "")
}

fn read(p: &ImportProfile, bytes: &[u8]) -> Result<ValidatedFile, Error> {
    read_file(p, bytes, &ReadOptions::default())
}

fn items(file: &ValidatedFile) -> Vec<DailyItem<'_>> {
    file.daily_items(ItemOrder::ByLine).collect()
}

/// One metric of one key, day by day, as text.
fn series(file: &ValidatedFile, key: &str, metric: Metric) -> Vec<String> {
    items(file)
        .iter()
        .filter(|i| i.key == key)
        .map(|i| i.metrics.get(metric).map_or("-".to_string(), |q| q.to_string()))
        .collect()
}

fn invalid(result: Result<ValidatedFile, Error>) -> reimport_core::InvalidFile {
    match result {
        Err(Error::InvalidFile(f)) => f,
        Err(other) => panic!("expected an invalid file, got {other}"),
        Ok(_) => panic!("expected an invalid file, it was accepted"),
    }
}

const SEED_WEBSITE_HEADER: &str = "Nom,Visites,Actions,Nombre maximum d'actions en une visite,Temps total passé par les visiteurs(en secondes),Rebonds,Visites avec conversions,Visiteursuniques(résumé quotidien),Utilisateurs(résumé quotidien)";

#[test]
fn seed_website_example_spreads_over_march() {
    let p = ImportProfile::from_json(
        include_str!("../../../examples/website.json"),
        &ProfileLimits::default(),
    )
    .unwrap();
    let csv = format!("{SEED_WEBSITE_HEADER}\nexample.com,3100,9300,42,186000,1200,150,2490,0\n");
    let file = read(&p, csv.as_bytes()).unwrap();
    assert_eq!(file.daily_item_count(), 31);
    assert_eq!(series(&file, "example.com", Metric::Visit), vec!["100".to_string(); 31]);
    assert_eq!(
        series(&file, "example.com", Metric::Duration),
        vec!["6000".to_string(); 31]
    );
    let dv = series(&file, "example.com", Metric::DVisitor);
    assert_eq!(dv[0], "90", "2490 = 31 x 80 + 10: the remainder on the first day");
    assert!(dv[1..].iter().all(|d| d == "80"));
}

#[test]
fn spreading_table() {
    // (value, from, to, expected day by day)
    let cases: &[(&str, &str, &str, &[&str])] = &[
        ("2", "01/03/2023", "05/03/2023", &["2", "0", "0", "0", "0"]),
        ("100", "01/03/2023", "03/03/2023", &["34", "33", "33"]),
        ("7", "15/03/2023", "15/03/2023", &["7"]),
        ("0", "01/03/2023", "02/03/2023", &["0", "0"]),
        ("30", "28/02/2024", "01/03/2024", &["10", "10", "10"]),
        ("31", "28/02/2023", "01/03/2023", &["16", "15"]),
    ];
    for (value, from, to, want) in cases {
        let p = website(&[(1, "visit")], from, to);
        let file = read(&p, format!("Nom,Visites\nsite,{value}\n").as_bytes()).unwrap();
        assert_eq!(
            series(&file, "site", Metric::Visit),
            *want,
            "{value} from {from} to {to}"
        );
    }
}

#[test]
fn leap_year_february_has_29_days() {
    let p = website(&[(1, "visit")], "01/02/2024", "29/02/2024");
    let file = read(&p, b"Nom,Visites\nsite,58\n").unwrap();
    let all = items(&file);
    assert_eq!(all.len(), 29);
    assert_eq!(all[28].day, NaiveDate::from_ymd_opt(2024, 2, 29).unwrap());
    assert!(all
        .iter()
        .all(|i| i.metrics.get(Metric::Visit) == Some(Quantity::whole(2))));
}

#[test]
fn amounts_spread_in_their_smallest_unit() {
    let p = website(
        &[(1, "scartvalidamount"), (2, "estimatevalidamount")],
        "01/03/2023",
        "03/03/2023",
    );
    let file = read(&p, "Nom;CA;Leads\nshop;100,00;100\n".as_bytes()).unwrap();
    assert_eq!(
        series(&file, "shop", Metric::SCartValidAmount),
        ["33.34", "33.33", "33.33"]
    );
    assert_eq!(series(&file, "shop", Metric::EstimateValidAmount), ["34", "33", "33"]);
    let file = read(&p, "Nom;CA;Leads\nshop;\"1 234,6 €\";0,01\n".as_bytes()).unwrap();
    assert_eq!(
        series(&file, "shop", Metric::SCartValidAmount),
        ["411.6", "411.5", "411.5"]
    );
    assert_eq!(
        series(&file, "shop", Metric::EstimateValidAmount),
        ["0.01", "0.00", "0.00"]
    );
}

#[test]
fn pagetree_with_url_and_the_seed_columns() {
    let p = ImportProfile::from_json(
        include_str!("../../../examples/pagetree.json"),
        &ProfileLimits::default(),
    )
    .unwrap();
    let csv = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/pagetree.csv")).unwrap();
    let file = read(&p, &csv).unwrap();
    assert_eq!(file.line_count(), 3);
    let first = items(&file).into_iter().find(|i| i.key == "/produits/ete").unwrap();
    assert_eq!(
        first.dimensions.get(Dimension::PageInfoUrl),
        Some("https://example.fr/produits/ete")
    );
    assert_eq!(first.dimensions.get(Dimension::PageInfoName), Some("/produits/ete"));
    assert_eq!(
        first.metrics.get(Metric::Hit),
        Some(Quantity::whole(30)),
        "930 over 31 days"
    );
}

#[test]
fn colliding_keys_are_merged_and_reported() {
    let p = website(&[(1, "visit"), (2, "scartvalidamount")], "01/03/2023", "01/03/2023");
    let csv = "Nom,Visites,CA\nÉté,10,\"1,5\"\n Ete ,5,\"0,25\"\nautre,1,1\nete,1,1\n";
    let file = read(&p, csv.as_bytes()).unwrap();
    assert_eq!(file.lines_read(), 4);
    assert_eq!(
        file.line_count(),
        3,
        "Été and Ete are one line; ete (lower case) is another"
    );
    assert_eq!(series(&file, "Ete", Metric::Visit), ["15"]);
    assert_eq!(series(&file, "Ete", Metric::SCartValidAmount), ["1.75"]);
    let (merged, count) = file.merged_keys();
    assert_eq!(count, 1);
    assert_eq!(merged[0].key, "Ete");
    assert_eq!(merged[0].lines, [2, 3]);
    assert_eq!(merged[0].values, ["Été", " Ete "]);
    assert_eq!(file.totals_read()[&Metric::Visit], Quantity::whole(17));
}

#[test]
fn accents_are_removed_and_values_trimmed() {
    let p = profile(
        "pagetree",
        &[(0, "pageinfo_name"), (1, "pageinfo_url")],
        &[(2, "hit")],
        "01/03/2023",
        "01/03/2023",
        "",
    );
    let file = read(
        &p,
        "n,u,h\n  Crème brûlée à Noël  , https://x.fr/crème ,3\n'=cmd,,1\n".as_bytes(),
    )
    .unwrap();
    let keys: Vec<&str> = items(&file).iter().map(|i| i.key).collect();
    assert_eq!(keys, ["Creme brulee a Noel", "=cmd"]);
    assert_eq!(
        items(&file)[0].dimensions.get(Dimension::PageInfoUrl),
        Some("https://x.fr/creme")
    );
    assert_eq!(items(&file)[1].dimensions.get(Dimension::PageInfoUrl), None);
}

#[test]
fn country_codes_are_upper_case_alpha2() {
    let p = profile(
        "geoloccountry",
        &[(1, "geoloccountry_isocode")],
        &[(0, "visit")],
        "01/03/2023",
        "01/03/2023",
        "",
    );
    let file = read(&p, b"v,code\n5,fr\n3,De\n").unwrap();
    let keys: Vec<&str> = items(&file).iter().map(|i| i.key).collect();
    assert_eq!(keys, ["FR", "DE"]);
    let bad = invalid(read(&p, b"v,code\n5,France\n"));
    assert_eq!(bad.issues[0].line, 2);
    assert_eq!(bad.issues[0].idx, Some(1));
    assert!(
        bad.issues[0].reason.contains("ISO 3166-1 alpha-2"),
        "{}",
        bad.issues[0].reason
    );
}

#[test]
fn empty_cells_are_warnings_and_the_rest_of_the_line_is_written() {
    let p = website(&[(1, "visit"), (2, "duration")], "01/03/2023", "01/03/2023");
    let file = read(&p, b"Nom,Visites,Duree\na,,60\nb,,\nc,3,9\n").unwrap();
    let (warnings, count) = file.warnings();
    assert_eq!(count, 4, "{warnings:?}");
    assert_eq!(warnings[0].line, 2);
    assert_eq!(warnings[0].idx, Some(1));
    let all = items(&file);
    assert_eq!(all.len(), 2, "b has no metric at all: skipped");
    assert_eq!(all[0].metrics.get(Metric::Visit), None, "not written, not zero");
    assert_eq!(all[0].metrics.get(Metric::Duration), Some(Quantity::whole(60)));
}

#[test]
fn durations_in_h_mm_ss_become_seconds() {
    let p = website(&[(1, "duration")], "01/03/2023", "02/03/2023");
    let file = read(&p, b"Nom,Duree\na,01:00:01\n").unwrap();
    assert_eq!(series(&file, "a", Metric::Duration), ["1801", "1800"]);
}

#[test]
fn each_encoding_gives_the_same_lines() {
    let p = website(&[(1, "visit")], "01/03/2023", "01/03/2023");
    let text = "Nom,Visites\nÉté à Paris,12\nCafé,3";
    let utf16le: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(text.encode_utf16().flat_map(|u| u.to_le_bytes()))
        .collect();
    let mut utf16le_short = utf16le.clone();
    utf16le_short.pop();
    let utf16be: Vec<u8> = [0xFE, 0xFF]
        .into_iter()
        .chain(text.encode_utf16().flat_map(|u| u.to_be_bytes()))
        .collect();
    let cp1252: Vec<u8> = text.chars().map(|c| u8::try_from(u32::from(c)).unwrap()).collect();
    let bom8: Vec<u8> = [0xEF, 0xBB, 0xBF].into_iter().chain(text.bytes()).collect();
    let crlf = text.replace('\n', "\r\n");
    let cases: Vec<(&str, Vec<u8>, TextEncoding)> = vec![
        ("utf-8", text.as_bytes().to_vec(), TextEncoding::Utf8),
        ("utf-8 BOM", bom8, TextEncoding::Utf8),
        ("utf-8 CRLF", crlf.into_bytes(), TextEncoding::Utf8),
        ("utf-16le", utf16le, TextEncoding::Utf16Le),
        ("utf-16le missing its last byte", utf16le_short, TextEncoding::Utf16Le),
        ("utf-16be", utf16be, TextEncoding::Utf16Be),
        ("windows-1252", cp1252, TextEncoding::Windows1252),
    ];
    for (name, bytes, encoding) in cases {
        let file = read(&p, &bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(file.encoding(), encoding, "{name}");
        let got: Vec<(String, String)> = items(&file)
            .iter()
            .map(|i| (i.key.to_string(), i.metrics.get(Metric::Visit).unwrap().to_string()))
            .collect();
        assert_eq!(
            got,
            [
                ("Ete a Paris".to_string(), "12".to_string()),
                ("Cafe".into(), "3".into())
            ],
            "{name}"
        );
    }
}

#[test]
fn delimiters_are_detected_and_quotes_respected() {
    let p = website(&[(1, "visit"), (2, "scartvalidamount")], "01/03/2023", "01/03/2023");
    let cases: &[(&str, &[u8])] = &[
        ("comma", b"Nom,Visites,CA\n\"a, b\",1,\"2,50\"\n"),
        ("semicolon", b"Nom;Visites;CA\n\"a, b\";1;2,50\n"),
        ("tab", b"Nom\tVisites\tCA\n\"a, b\"\t1\t2,50"),
        ("quoted quote", b"Nom;Visites;CA\r\n\"a, b\";1;\"2,50\""),
    ];
    for (name, bytes) in cases {
        let file = read(&p, bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let all = items(&file);
        assert_eq!(all[0].key, "a, b", "{name}");
        assert_eq!(
            all[0].metrics.get(Metric::SCartValidAmount).unwrap().to_string(),
            "2.50",
            "{name}"
        );
    }
    let forced = profile(
        "website",
        &[(0, "website_name")],
        &[(1, "visit")],
        "01/03/2023",
        "01/03/2023",
        r#","delimiter":";""#,
    );
    let file = read(&forced, b"Nom,x;V\na,b;7\n").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        items(&file)[0].key,
        "a,b",
        "the profile's delimiter wins over detection"
    );
}

#[test]
fn a_bad_cell_refuses_the_whole_file_with_line_column_value_and_reason() {
    let p = website(&[(1, "visit"), (4, "duration")], "01/03/2023", "31/03/2023");
    let csv = format!("{SEED_WEBSITE_HEADER}\nok.fr,10,0,0,60,0,0,0,0\nbad.fr,douze,0,0,60,0,0,0,0\n");
    let bad = invalid(read(&p, csv.as_bytes()));
    assert_eq!(bad.total, 1);
    let issue = &bad.issues[0];
    assert_eq!((issue.line, issue.idx, issue.value.as_str()), (3, Some(1), "douze"));
    assert_eq!(issue.reason, "not a number for visit");
    let text = Error::InvalidFile(bad).to_string();
    assert!(
        text.contains("line 3, column 2 (idx 1), value \"douze\": not a number for visit"),
        "{text}"
    );
    assert!(text.contains("nothing was written"), "{text}");
}

#[test]
fn refusals_table() {
    let p = website(&[(1, "visit"), (2, "scartvalidamount")], "01/03/2023", "01/03/2023");
    let cases: &[(&str, u64, Option<usize>, &str)] = &[
        ("Nom,V,CA\na,-3,1\n", 2, Some(1), "negative"),
        ("Nom,V,CA\na,1.5,1\n", 2, Some(1), "whole"),
        ("Nom,V,CA\na,27%,1\n", 2, Some(1), "percentage"),
        ("Nom,V,CA\na,1,\"1,234\"\n", 2, Some(2), "\"decimalSeparator\""),
        ("Nom,V,CA\na,1,1.234\n", 2, Some(2), "\"decimalSeparator\""),
        ("Nom,V,CA\n,1,1\n", 2, Some(0), "the key website_name is empty"),
        (
            "Nom,V,CA\na,1\n",
            2,
            None,
            "the line has 2 columns, the profile reads up to column 3 (idx 2)",
        ),
        ("Nom,V,CA\n", 1, None, "no data line after its header"),
        ("Nom,V,CA\na,99999999999999999999,1\n", 2, Some(1), "too large"),
    ];
    for (csv, line, idx, reason) in cases {
        let bad = invalid(read(&p, csv.as_bytes()));
        let issue = &bad.issues[0];
        assert_eq!((issue.line, issue.idx), (*line, *idx), "{csv:?}: {issue}");
        assert!(issue.reason.contains(reason), "{csv:?}: wanted {reason:?} in {issue}");
    }
}

#[test]
fn several_problems_are_listed_up_to_the_limit_and_counted() {
    let p = website(&[(1, "visit")], "01/03/2023", "01/03/2023");
    let mut csv = String::from("Nom,V\n");
    for i in 0..50 {
        csv.push_str(&format!("k{i},x{i}\n"));
    }
    let bad = invalid(read(&p, csv.as_bytes()));
    assert_eq!(bad.total, 50);
    assert_eq!(bad.issues.len(), ReadOptions::default().max_errors);
    let lines: Vec<u64> = bad.issues.iter().map(|i| i.line).collect();
    assert_eq!(lines[..3], [2, 3, 4]);
    assert!(Error::InvalidFile(bad).to_string().contains("and 30 more"));
}

#[test]
fn a_header_read_as_data_gets_a_hint() {
    let p = ImportProfile::from_json(
        r#"{"skipHeader":false,"kind":"website","dimensions":[{"idx":0,"target":"website_name"}],"metrics":[{"idx":1,"target":"visit"}],"period":{"from":"01/03/2023","to":"01/03/2023","scale":"D"}}"#,
        &ProfileLimits::default(),
    )
    .unwrap();
    let bad = invalid(read(&p, b"Nom,Visites\na,1\n"));
    assert!(bad.issues[0].reason.contains("skipHeader"), "{}", bad.issues[0]);
}

#[test]
fn invalid_utf8_after_the_sniff_window_names_the_encoding_option() {
    let p = website(&[(1, "visit")], "01/03/2023", "01/03/2023");
    let mut csv = String::from("Nom,V\n");
    while csv.len() < 70_000 {
        csv.push_str("plain ascii line,1\n");
    }
    let mut bytes = csv.into_bytes();
    bytes.extend_from_slice(b"caf\xe9,2\n");
    let bad = invalid(read(&p, &bytes));
    assert!(bad.issues[0].reason.contains("\"encoding\""), "{}", bad.issues[0]);
    assert!(bad.issues[0].line > 3000);
}

#[test]
fn by_day_order_visits_every_line_each_day() {
    let p = website(&[(1, "visit")], "01/03/2023", "03/03/2023");
    let file = read(&p, b"Nom,V\na,3\nb,3\n").unwrap();
    let order: Vec<(&str, u32)> = file
        .daily_items(ItemOrder::ByDay)
        .map(|i| (i.key, chrono::Datelike::day(&i.day)))
        .collect();
    assert_eq!(order, [("a", 1), ("b", 1), ("a", 2), ("b", 2), ("a", 3), ("b", 3)]);
}

#[test]
fn memory_follows_distinct_lines_not_days() {
    // 20,000 lines over a full year: 7.3 million daily items, generated lazily.
    let p = website(&[(1, "visit")], "01/01/2024", "31/12/2024");
    let mut csv = String::from("Nom,V\n");
    for i in 0..20_000 {
        csv.push_str(&format!("site-{i},{i}\n"));
    }
    let file = read(&p, csv.as_bytes()).unwrap();
    assert_eq!(file.daily_item_count(), 20_000 * 366);
    let mut items = file.daily_items(ItemOrder::ByLine);
    let first = items.next().unwrap();
    assert_eq!(first.key, "site-0");
    assert_eq!(items.size_hint().1, None);
}
