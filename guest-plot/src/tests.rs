//! End-to-end tests of `run`: params in, PNG out, decoded and inspected.

use image::RgbImage;
use serde_json::{Value, json};

use kiln_guest::test::TestHost;
use kiln_guest::{ErrorCode, JobError};

use crate::Plot;

/// Runs a job with the kind's defaults; its output must be labelled PNG.
fn run(params: &str, input: &[u8]) -> Result<Vec<u8>, JobError> {
    kiln_guest::test::output::<Plot>("image/png", params, input)
}

fn render_with(params: &Value, input: &[u8]) -> RgbImage {
    let png = run(&params.to_string(), input).expect("job succeeds");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    image::load_from_memory_with_format(&png, image::ImageFormat::Png)
        .expect("valid PNG")
        .to_rgb8()
}

fn render(params: Value) -> RgbImage {
    render_with(&params, b"")
}

fn fail(params: Value, input: &[u8]) -> JobError {
    run(&params.to_string(), input).expect_err("job fails")
}

/// Saves the image when PLOT_OUT is set, to look at by eye.
fn save(img: &RgbImage, name: &str) {
    if let Ok(dir) = std::env::var("PLOT_OUT") {
        img.save(format!("{dir}/plot-{name}.png")).expect("save");
    }
}

fn is_dark(p: &image::Rgb<u8>) -> bool {
    p.0.iter().all(|&c| c < 100)
}

fn count(
    img: &RgbImage,
    x: std::ops::Range<u32>,
    y: std::ops::Range<u32>,
    f: impl Fn(&image::Rgb<u8>) -> bool,
) -> usize {
    y.flat_map(|y| x.clone().map(move |x| (x, y)))
        .filter(|&(x, y)| f(img.get_pixel(x, y)))
        .count()
}

fn has_color(img: &RgbImage, c: (u8, u8, u8), x: std::ops::Range<u32>, y: std::ops::Range<u32>) -> bool {
    count(img, x, y, |p| p.0 == [c.0, c.1, c.2]) > 0
}

const BLUE: (u8, u8, u8) = (31, 119, 180);
const ORANGE: (u8, u8, u8) = (255, 127, 14);

fn two_series() -> Value {
    json!([
        {"name": "alpha", "x": [0, 1, 2, 3, 4], "y": [1, 3, 2, 5, 4]},
        {"name": "beta", "x": [0, 1, 2, 3, 4], "y": [2, 1, 4, 3, 6]}
    ])
}

#[test]
fn line_chart_has_requested_size_and_both_series_colours() {
    let img = render(json!({
        "type": "line", "title": "Two series", "x_label": "time (s)", "y_label": "value",
        "width": 640, "height": 400, "series": two_series()
    }));
    save(&img, "line");
    assert_eq!(img.dimensions(), (640, 400));
    assert!(has_color(&img, BLUE, 0..640, 0..400));
    assert!(has_color(&img, ORANGE, 0..640, 0..400));
}

#[test]
fn defaults_to_an_800_by_600_line_chart() {
    let img = render(json!({"series": [{"y": [1, 2, 3]}]}));
    assert_eq!(img.dimensions(), (800, 600));
    assert!(has_color(&img, BLUE, 0..800, 0..600));
}

#[test]
fn scatter_chart_renders() {
    let img = render(json!({"type": "scatter", "width": 300, "height": 200, "series": two_series()}));
    save(&img, "scatter");
    assert_eq!(img.dimensions(), (300, 200));
    // Markers are drawn slightly translucent, so look for blue-ish rather than the exact colour.
    assert!(count(&img, 0..300, 0..200, |p| p.0[2] > 150 && p.0[0] < 120) > 20);
}

#[test]
fn bar_chart_with_labels_draws_bars_and_category_names() {
    let params = json!({
        "type": "bar", "title": "Fruit", "labels": ["apples", "pears", "plums"],
        "series": [{"name": "2023", "y": [3, 5, 2]}, {"name": "2024", "y": [4, 1, 6]}],
        "width": 500, "height": 350
    });
    let img = render(params.clone());
    save(&img, "bar");
    assert_eq!(img.dimensions(), (500, 350));
    assert!(
        count(&img, 0..500, 0..350, |p| p.0 == [31, 119, 180]) > 500,
        "blue bars"
    );
    assert!(
        count(&img, 0..500, 0..350, |p| p.0 == [255, 127, 14]) > 500,
        "orange bars"
    );

    // The category names sit below the plot: changing them changes that strip only.
    let mut other = params;
    other["labels"] = json!(["x", "y", "z"]);
    let img2 = render(other);
    let bottom = (300..340).flat_map(|y| (0..500).map(move |x| (x, y)));
    assert!(bottom.clone().any(|(x, y)| img.get_pixel(x, y) != img2.get_pixel(x, y)));
}

#[test]
fn bar_chart_with_numeric_x_and_negative_values() {
    let img = render(json!({"type": "bar", "width": 300, "height": 200,
        "series": [{"x": [1, 2, 4], "y": [3, -2, 1]}]}));
    assert_eq!(img.dimensions(), (300, 200));
    assert!(count(&img, 0..300, 0..200, |p| p.0 == [31, 119, 180]) > 200);
}

#[test]
fn histogram_bins_samples() {
    // A triangular distribution: sums of two uniform-ish values.
    let samples: Vec<f64> = (0..500)
        .map(|i| (((i * 37) % 100) + ((i * 53) % 100)) as f64 / 20.0)
        .collect();
    let img = render(json!({"type": "histogram", "bins": 10, "title": "Histogram",
        "series": [{"name": "samples", "y": samples}], "width": 400, "height": 300}));
    save(&img, "histogram");
    assert_eq!(img.dimensions(), (400, 300));
    assert!(count(&img, 0..400, 0..300, |p| p.0[2] > 150 && p.0[0] < 120) > 1000);
}

#[test]
fn title_is_drawn_as_dark_pixels_at_the_top() {
    let base = json!({"width": 400, "height": 300, "series": [{"y": [1, 2, 3]}]});
    let mut titled = base.clone();
    titled["title"] = json!("A readable title");
    let with = render(titled);
    let without = render(base);
    // The title band is the top ~30 pixels at this size, centred: ink on both sides of the middle
    // and none near the edges. Without a title, the plot starts there and that band is blank.
    assert!(count(&with, 100..300, 0..30, is_dark) > 100, "title ink");
    assert!(count(&with, 100..200, 0..30, is_dark) > 0 && count(&with, 200..300, 0..30, is_dark) > 0);
    assert_eq!(count(&with, 0..60, 0..30, is_dark), 0, "title is centred");
    assert_eq!(count(&without, 100..300, 0..30, is_dark), 0, "no title, no ink");
}

#[test]
fn y_label_is_drawn_rotated_along_the_left_edge() {
    let base = json!({"width": 400, "height": 300, "series": [{"y": [1, 2, 3]}]});
    let mut labelled = base.clone();
    labelled["y_label"] = json!("a long vertical axis label");
    let with = render(labelled);
    let without = render(base);
    // The label is left of the tick labels (which start about 27 px in at this size): the ink that
    // only the labelled chart has there is a tall, thin strip.
    let (mut x0, mut x1, mut y0, mut y1) = (u32::MAX, 0, u32::MAX, 0);
    for (x, y, p) in with.enumerate_pixels() {
        if is_dark(p) && !is_dark(without.get_pixel(x, y)) && x < 25 {
            (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
        }
    }
    assert!(x0 <= x1, "label ink found");
    assert!(y1 - y0 > 4 * (x1 - x0), "tall and thin: x {x0}..{x1}, y {y0}..{y1}");
    assert!(x1 - x0 < 16, "one line of text wide: {x0}..{x1}");
    assert!(y1 - y0 > 80, "long: {y0}..{y1}");
}

#[test]
fn legend_names_every_series_in_an_empty_corner() {
    // Data everywhere but the top right, so the legend goes there.
    let img = render(json!({"width": 600, "height": 400, "series": [
        {"name": "first", "x": [0, 1, 2, 10], "y": [0, 1, 0, 0]},
        {"name": "second", "x": [0, 1, 2, 10], "y": [1, 0, 1, 0]},
        {"name": "third", "x": [0, 1, 2, 10], "y": [0.5, 0.5, 0.5, 0]},
        {"x": [0], "y": [10]}
    ]}));
    save(&img, "legend");
    let (x, y) = (380..590, 0..140);
    assert!(has_color(&img, BLUE, x.clone(), y.clone()), "first swatch");
    assert!(has_color(&img, ORANGE, x.clone(), y.clone()), "second swatch");
    assert!(has_color(&img, (44, 160, 44), x.clone(), y.clone()), "third swatch");
    assert!(
        has_color(&img, (214, 39, 40), x.clone(), y.clone()),
        "unnamed fourth swatch"
    );
    let ink = count(&img, x, y, is_dark);
    assert!(ink > 40, "names drawn: {ink} dark pixels");
}

#[test]
fn single_unnamed_series_has_no_legend() {
    let a = render(json!({"width": 300, "height": 200, "series": [{"y": [1, 2]}]}));
    let b = render(json!({"width": 300, "height": 200, "series": [{"name": "named", "y": [1, 2]}]}));
    assert_ne!(a, b, "a named series gets a legend");
}

#[test]
fn many_series_get_distinct_colours() {
    let series: Vec<Value> = (0..32)
        .map(|i| json!({"name": format!("s{i}"), "y": [i, i + 1]}))
        .collect();
    let img = render(json!({"width": 800, "height": 600, "series": series}));
    save(&img, "many");
    let colours: std::collections::HashSet<_> = (0..32).map(crate::render::color).map(|c| (c.0, c.1, c.2)).collect();
    assert_eq!(colours.len(), 32);
}

const CSV: &str = "year,a,b,note\n\
1999,1,9,x\n2000,2,8,x\n2001,3,7,x\n2005,4,6,x\n2010,5,,gap\n2015,6,4,x\n2021,7,3,x\n2022,8,2,x\n";

#[test]
fn csv_seed_case_plots_the_selected_rows() {
    let params = json!({"csv": {"x": "year", "y": ["a", "b"]}, "start": 2001, "end": 2021,
        "title": "Seed", "x_label": "year", "y_label": "value"});
    let parsed = crate::params::parse(&params.to_string()).expect("params");
    let data = crate::data::assemble(&parsed, CSV.as_bytes()).expect("data");
    assert_eq!(data.series.len(), 2);
    assert_eq!(data.series[0].name, "a");
    assert_eq!(data.series[1].name, "b");
    let xs: Vec<f64> = data.series[0].points.iter().map(|p| p.0).collect();
    assert_eq!(xs, [2001.0, 2005.0, 2010.0, 2015.0, 2021.0]);
    assert_eq!(data.series[1].points[2], (2010.0, None), "empty cell is a gap");

    let img = render_with(&params, CSV.as_bytes());
    save(&img, "csv");
    assert_eq!(img.dimensions(), (800, 600));
    assert!(has_color(&img, BLUE, 0..800, 0..600));
    assert!(has_color(&img, ORANGE, 0..800, 0..600));
}

#[test]
fn csv_without_x_uses_the_row_index_and_handles_bom_and_crlf() {
    let input = b"\xef\xbb\xbfv\r\n1\r\n2\r\n3\r\n";
    let params = json!({"csv": {"y": ["v"]}, "type": "bar"});
    let parsed = crate::params::parse(&params.to_string()).expect("params");
    let data = crate::data::assemble(&parsed, input).expect("data");
    assert_eq!(
        data.series[0].points,
        [(0.0, Some(1.0)), (1.0, Some(2.0)), (2.0, Some(3.0))]
    );
    render_with(&params, input);
}

#[test]
fn progress_reports_the_milestones_in_order() {
    let mut host = TestHost::new();
    host.run::<Plot>(&json!({"series": [{"y": [1, 2]}]}).to_string(), b"")
        .expect("ok");
    assert_eq!(host.progress(), [0.1, 0.3, 0.8, 1.0]);
}

#[test]
fn tiny_and_extreme_images_render_without_panicking() {
    let long = "W".repeat(200);
    for (w, h) in [(64, 64), (64, 4096), (4096, 64), (97, 65)] {
        for kind in ["line", "scatter", "bar", "histogram"] {
            let img = render(json!({"type": kind, "width": w, "height": h, "title": long,
                "x_label": "x".repeat(100), "y_label": "y".repeat(100),
                "series": [{"name": long[..100], "y": [1e300, -1e300, 0]}, {"y": [5, 5, 5]}]}));
            assert_eq!(img.dimensions(), (w, h), "{kind} {w}x{h}");
        }
    }
}

#[test]
fn constant_and_single_point_data_render() {
    for kind in ["line", "scatter", "bar", "histogram"] {
        render(json!({"type": kind, "width": 200, "height": 150, "series": [{"y": [7]}]}));
        render(json!({"type": kind, "width": 200, "height": 150, "series": [{"y": [0, 0, 0]}]}));
    }
    render(json!({"width": 200, "height": 150, "series": [{"x": [1e10, 1e10], "y": [1, 1.0000000001]}]}));
}

#[test]
fn hundred_thousand_points_render() {
    let y: Vec<f64> = (0..100_000).map(|i| (i as f64 / 1000.0).sin()).collect();
    let img = render(json!({"width": 400, "height": 300, "series": [{"y": y}]}));
    assert_eq!(img.dimensions(), (400, 300));
}

#[test]
fn integral_floats_are_accepted_as_integers() {
    let img = render(json!({"width": 320.0, "height": 200, "series": [{"y": [1]}]}));
    assert_eq!(img.dimensions(), (320, 200));
}

/// Each invalid request, the code it must get and a fragment its message must contain.
#[test]
fn invalid_requests_are_rejected_with_the_field_named() {
    let ok_series = json!([{"y": [1, 2]}]);
    let cases: Vec<(Value, &[u8], ErrorCode, &str)> = vec![
        (
            json!({"type": "pie", "series": ok_series}),
            b"",
            ErrorCode::InvalidParams,
            "type",
        ),
        (
            json!({"colour": "red", "series": ok_series}),
            b"",
            ErrorCode::InvalidParams,
            "colour",
        ),
        (
            json!({"width": 63, "series": ok_series}),
            b"",
            ErrorCode::InvalidParams,
            "width",
        ),
        (
            json!({"height": 4097, "series": ok_series}),
            b"",
            ErrorCode::InvalidParams,
            "height",
        ),
        (
            json!({"width": 100.5, "series": ok_series}),
            b"",
            ErrorCode::InvalidParams,
            "width",
        ),
        (
            json!({"title": null, "series": ok_series}),
            b"",
            ErrorCode::InvalidParams,
            "title",
        ),
        (
            json!({"title": "t".repeat(201), "series": ok_series}),
            b"",
            ErrorCode::InvalidParams,
            "title",
        ),
        (
            json!({"x_label": "x".repeat(101), "series": ok_series}),
            b"",
            ErrorCode::InvalidParams,
            "x_label",
        ),
        (json!({"series": []}), b"", ErrorCode::InvalidParams, "series"),
        (json!({}), b"", ErrorCode::InvalidParams, "series"),
        (
            json!({"series": [{"x": [1, 2, 3], "y": [1, 2]}]}),
            b"",
            ErrorCode::InvalidParams,
            "series[0].x",
        ),
        (
            json!({"series": [{"y": []}]}),
            b"",
            ErrorCode::InvalidParams,
            "series[0].y",
        ),
        (
            json!({"series": [{"y": [1, "two"]}]}),
            b"",
            ErrorCode::InvalidParams,
            "series[0].y[1]",
        ),
        (
            json!({"series": [{"y": [1], "z": [2]}]}),
            b"",
            ErrorCode::InvalidParams,
            "z",
        ),
        (
            json!({"series": [{"y": [1], "name": "n".repeat(101)}]}),
            b"",
            ErrorCode::InvalidParams,
            "series[0].name",
        ),
        (
            json!({"series": [{"y": [1, 1e301]}]}),
            b"",
            ErrorCode::InvalidParams,
            "series[0].y[1]",
        ),
        (
            json!({"series": (0..33).map(|_| json!({"y": [1]})).collect::<Vec<_>>()}),
            b"",
            ErrorCode::InvalidParams,
            "series",
        ),
        (
            json!({"series": [{"y": vec![1; 60_000]}, {"y": vec![1; 40_001]}]}),
            b"",
            ErrorCode::InvalidParams,
            "points",
        ),
        (
            json!({"type": "histogram", "bins": 0, "series": ok_series}),
            b"",
            ErrorCode::InvalidParams,
            "bins",
        ),
        (
            json!({"type": "histogram", "bins": 1001, "series": ok_series}),
            b"",
            ErrorCode::InvalidParams,
            "bins",
        ),
        (
            json!({"type": "line", "bins": 5, "series": ok_series}),
            b"",
            ErrorCode::InvalidParams,
            "bins",
        ),
        (
            json!({"type": "histogram", "series": [{"x": [1], "y": [1]}]}),
            b"",
            ErrorCode::InvalidParams,
            "series[0].x",
        ),
        (
            json!({"type": "line", "labels": ["a"], "series": [{"y": [1]}]}),
            b"",
            ErrorCode::InvalidParams,
            "labels",
        ),
        (
            json!({"type": "bar", "labels": ["a", "b"], "series": [{"y": [1]}]}),
            b"",
            ErrorCode::InvalidParams,
            "labels",
        ),
        (
            json!({"type": "bar", "labels": ["a"], "series": [{"x": [3], "y": [1]}]}),
            b"",
            ErrorCode::InvalidParams,
            "series[0].x",
        ),
        (
            json!({"start": 1, "series": ok_series}),
            b"",
            ErrorCode::InvalidParams,
            "start",
        ),
        // CSV cases.
        (
            json!({"csv": {"x": "year", "y": ["a"]}, "series": ok_series}),
            CSV.as_bytes(),
            ErrorCode::InvalidParams,
            "csv and series",
        ),
        (
            json!({"csv": {"x": "year", "y": ["a"]}}),
            b"",
            ErrorCode::InvalidParams,
            "csv",
        ),
        (
            json!({"series": ok_series}),
            CSV.as_bytes(),
            ErrorCode::InvalidParams,
            "csv",
        ),
        (
            json!({"csv": {"x": "yr", "y": ["a"]}}),
            CSV.as_bytes(),
            ErrorCode::InvalidParams,
            "csv.x",
        ),
        (
            json!({"csv": {"x": "year", "y": ["a", "c"]}}),
            CSV.as_bytes(),
            ErrorCode::InvalidParams,
            "csv.y[1]",
        ),
        (
            json!({"csv": {"x": "year", "y": []}}),
            CSV.as_bytes(),
            ErrorCode::InvalidParams,
            "csv.y",
        ),
        (
            json!({"csv": {"x": "year", "y": ["a"]}, "start": 5, "end": 1}),
            CSV.as_bytes(),
            ErrorCode::InvalidParams,
            "start",
        ),
        (
            json!({"csv": {"x": "year", "y": ["a"]}, "start": 3000}),
            CSV.as_bytes(),
            ErrorCode::InvalidParams,
            "start",
        ),
        (
            json!({"csv": {"x": "year", "y": ["a"]}}),
            b"year,a\n2000,1\n2001,x\n",
            ErrorCode::InvalidInput,
            "line 3",
        ),
        (
            json!({"csv": {"x": "year", "y": ["a"]}}),
            b"year,a\n2000,1\nabc,2\n",
            ErrorCode::InvalidInput,
            "line 3",
        ),
        (
            json!({"csv": {"x": "year", "y": ["a"]}}),
            b"year,a\n2000,1\n2001,NaN\n",
            ErrorCode::InvalidInput,
            "line 3",
        ),
        (
            json!({"csv": {"x": "year", "y": ["a"]}}),
            b"year,a\n2000,1\n2001,2,3\n",
            ErrorCode::InvalidInput,
            "line 3",
        ),
        (
            json!({"csv": {"x": "year", "y": ["a"]}}),
            b"year,a\n",
            ErrorCode::InvalidInput,
            "no data rows",
        ),
        (
            json!({"csv": {"x": "year", "y": ["a"]}}),
            b"\n",
            ErrorCode::InvalidInput,
            "header",
        ),
        (
            json!({"csv": {"x": "year", "y": ["a"]}}),
            b"year,a\n2000,\xff\n",
            ErrorCode::InvalidInput,
            "line 2",
        ),
        (
            json!({"csv": {"x": "year", "y": ["a"]}}),
            b"year,a\n2000,\n",
            ErrorCode::InvalidInput,
            "no values",
        ),
    ];
    for (params, input, code, fragment) in cases {
        let e = fail(params.clone(), input);
        assert_eq!(e.code, code, "{params}: {e}");
        assert!(
            e.message.contains(fragment),
            "{params}: message {:?} should name {fragment:?}",
            e.message
        );
    }
}

#[test]
fn not_json_is_invalid_params() {
    let e = run("{not json", b"").expect_err("fails");
    assert_eq!(e.code, ErrorCode::InvalidParams);
}

mod manifest {
    use serde_json::Value;

    fn kind() -> Value {
        serde_json::from_str(include_str!("../kind.json")).expect("kind.json is JSON")
    }

    #[test]
    fn has_the_agreed_shape() {
        let kind = kind();
        let mut keys: Vec<&str> = kind.as_object().expect("object").keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "description",
                "input",
                "name",
                "output_media_type",
                "params_schema",
                "settings"
            ]
        );
        assert_eq!(kind["name"], "plot");
        assert_eq!(kind["output_media_type"], "image/png");
        assert_eq!(kind["input"], "optional");
        assert_eq!(kind["settings"], serde_json::json!({}));
        assert_eq!(
            kind["params_schema"]["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
    }

    /// `params_schema` is what [`Raw`](crate::params::Raw) generates (`KILN_UPDATE_MANIFEST=1`
    /// rewrites it).
    #[test]
    fn params_schema_is_generated_from_the_params_type() {
        kiln_guest::check_manifest::<crate::params::Raw>(concat!(env!("CARGO_MANIFEST_DIR"), "/kind.json"));
    }

    /// The host rejects what the schema rejects (422) before the guest sees it, so the two must
    /// agree on every structural question; only cross-field rules are left to the guest alone.
    #[test]
    fn schema_and_parser_agree() {
        let schema = kind()["params_schema"].clone();
        let validator = jsonschema::validator_for(&schema).expect("schema compiles");
        let big = format!("{{\"series\":[{{\"y\":[{}]}}]}}", vec!["1"; 100_000].join(","));
        let too_big = format!("{{\"series\":[{{\"y\":[{}]}}]}}", vec!["1"; 100_001].join(","));
        let documents: Vec<String> = [
            r#"{}"#,
            r#"{"series":[{"y":[1]}]}"#,
            r#"{"series":[]}"#,
            r#"{"series":[{"x":[1],"y":[1]}],"type":"scatter","title":"t","x_label":"x","y_label":"y"}"#,
            r#"{"series":[{"y":[1]}],"type":"pie"}"#,
            r#"{"series":[{"y":[1]}],"width":64,"height":4096}"#,
            r#"{"series":[{"y":[1]}],"width":63}"#,
            r#"{"series":[{"y":[1]}],"width":4097}"#,
            r#"{"series":[{"y":[1]}],"width":800.0}"#,
            r#"{"series":[{"y":[1]}],"width":800.5}"#,
            r#"{"series":[{"y":[1]}],"width":"800"}"#,
            r#"{"series":[{"y":[1]}],"width":null}"#,
            r#"{"series":[{"y":[1]}],"title":null}"#,
            r#"{"series":[{"y":[1]}],"colour":"red"}"#,
            r#"{"series":[{"y":[1],"colour":"red"}]}"#,
            r#"{"series":[{"y":[]}]}"#,
            r#"{"series":[{"x":[1]}]}"#,
            r#"{"series":[{"y":[1e300,-1e300]}]}"#,
            r#"{"series":[{"y":[1.1e300]}]}"#,
            r#"{"series":[{"y":["1"]}]}"#,
            r#"{"series":[{"y":[1],"name":null}]}"#,
            r#"{"series":{"y":[1]}}"#,
            r#"{"type":"histogram","bins":1,"series":[{"y":[1]}]}"#,
            r#"{"type":"histogram","bins":1000,"series":[{"y":[1]}]}"#,
            r#"{"type":"histogram","bins":0,"series":[{"y":[1]}]}"#,
            r#"{"type":"histogram","bins":1001,"series":[{"y":[1]}]}"#,
            r#"{"type":"line","bins":5,"series":[{"y":[1]}]}"#,
            r#"{"bins":5,"series":[{"y":[1]}]}"#,
            r#"{"type":"bar","labels":["a"],"series":[{"y":[1]}]}"#,
            r#"{"type":"bar","labels":[],"series":[{"y":[1]}]}"#,
            r#"{"labels":["a"],"series":[{"y":[1]}]}"#,
            r#"{"type":"scatter","labels":["a"],"series":[{"y":[1]}]}"#,
            r#"{"csv":{"y":["a"]}}"#,
            r#"{"csv":{"x":"year","y":["a","b"]},"start":2001,"end":2021}"#,
            r#"{"csv":{"x":"year","y":[]}}"#,
            r#"{"csv":{"x":"","y":["a"]}}"#,
            r#"{"csv":{"x":"  ","y":["a"]}}"#,
            r#"{"csv":{"x":"year","y":[" "]}}"#,
            r#"{"csv":{"x":"year"}}"#,
            r#"{"csv":{"x":"year","y":["a"],"z":1}}"#,
            r#"{"csv":{"x":"year","y":["a"]},"series":[{"y":[1]}]}"#,
            r#"{"start":1,"series":[{"y":[1]}]}"#,
            r#"{"end":1,"series":[{"y":[1]}]}"#,
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([big, too_big])
        .chain([
            format!(r#"{{"series":[{{"y":[1]}}],"title":"{}"}}"#, "é".repeat(200)),
            format!(r#"{{"series":[{{"y":[1]}}],"title":"{}"}}"#, "é".repeat(201)),
            format!(r#"{{"series":[{{"y":[1],"name":"{}"}}]}}"#, "n".repeat(101)),
            format!(r#"{{"series":[{}]}}"#, vec![r#"{"y":[1]}"#; 32].join(",")),
            format!(r#"{{"series":[{}]}}"#, vec![r#"{"y":[1]}"#; 33].join(",")),
        ])
        .collect();
        for doc in &documents {
            let value: Value = serde_json::from_str(doc).expect("test document is JSON");
            let by_schema = validator.is_valid(&value);
            let by_guest = crate::params::parse(doc).is_ok();
            let shown: String = doc.chars().take(120).collect();
            assert_eq!(by_schema, by_guest, "schema {by_schema}, guest {by_guest}: {shown}");
        }

        // Cross-field rules the schema cannot express: it accepts, the guest rejects.
        for doc in [
            r#"{"series":[{"x":[1,2],"y":[1]}]}"#,
            r#"{"type":"bar","labels":["a","b"],"series":[{"y":[1]}]}"#,
            r#"{"type":"bar","labels":["a"],"series":[{"x":[1],"y":[1]}]}"#,
            r#"{"type":"histogram","series":[{"x":[1],"y":[1]}]}"#,
            r#"{"type":"bar","labels":["a"],"csv":{"y":["a"]}}"#,
            r#"{"csv":{"y":["a"]},"start":2,"end":1}"#,
        ] {
            let value: Value = serde_json::from_str(doc).expect("JSON");
            assert!(validator.is_valid(&value), "schema accepts {doc}");
            assert!(crate::params::parse(doc).is_err(), "guest rejects {doc}");
        }
    }
}

#[test]
fn pathological_data_renders_without_panicking() {
    let cases = [
        json!([{"x": [1, 1, 1], "y": [2, 2, 2]}]),
        json!([{"x": [1, 1], "y": [2, 2]}, {"x": [1, 1], "y": [2, 3]}]),
        json!([{"y": [1e300, -1e300, 1e300, -1e300]}]),
        json!([{"x": [-1e300, 1e300], "y": [1e-300, -1e-300]}]),
        json!([{"x": [0, 1e-300, 2e-300], "y": [5e-324, 0, 1]}]),
        json!([{"y": [1, 1.0000000000000002, 1]}]),
        json!([{"x": [3, 1, 2, 1, 3], "y": [0, 1, 0, 1, 0]}]),
        json!([{"y": [0, 1e12, 0, 1e12]}, {"y": [-5]}]),
    ];
    for series in cases {
        for kind in ["line", "scatter", "bar", "histogram"] {
            let mut params = json!({"type": kind, "width": 160, "height": 120, "series": series});
            if kind == "histogram" {
                for s in params["series"].as_array_mut().expect("array") {
                    s.as_object_mut().expect("object").remove("x");
                }
                params["bins"] = json!(1000);
            }
            let img = render(params.clone());
            assert_eq!(img.dimensions(), (160, 120), "{params}");
        }
    }
}
