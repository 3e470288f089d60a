//! The federation's region map for the statistics dashboard: the regions'
//! boundaries from a GeoJSON file in the deployment (`[statistics]
//! regions_file`), read and checked once at start ([`RegionMap::load`]),
//! and the choropleth ([`RegionMap::choropleth`]): each region shaded by
//! its rate (survivors per 100,000 inhabitants when the file gives a
//! population, else the count), as server-rendered SVG with every text
//! escaped and a title on each region for screen readers and pointers.
//!
//! The file is a `FeatureCollection`; each feature has a `Polygon` or
//! `MultiPolygon` geometry and the properties `code` (an ISO 3166-2 code,
//! the value survivors' `regionOfIdentification` takes), `name`, optionally
//! its names in the dashboard's other languages (`name:es`, `name:fr`,
//! `name:ar`, as OpenStreetMap writes them), and optionally `population`
//! (a positive whole number). Anything else is an
//! error naming the feature, so a broken file stops the gateway at start
//! rather than drawing a wrong map.

use std::collections::BTreeMap;
use std::path::Path;

use exchange_schema::intake::RegionCode;
use exchange_schema::statistics::ReleasedTable;
use exchange_service::lang::Lang;
use exchange_service::pages::escape_html;

/// Width of the map's view box; the height follows the regions' shape.
const WIDTH: f64 = 560.0;
/// Shades of the choropleth, lightest first.
pub const SHADES: usize = 5;

/// One region of the map.
#[derive(Debug, Clone)]
pub struct Region {
    pub code: String,
    /// The `name` property: the name in any language the file has no
    /// other name for.
    pub name: String,
    /// Names in other languages (`name:<tag>`).
    pub names: Vec<(Lang, String)>,
    pub population: Option<u64>,
    /// Rings of (longitude, latitude): each polygon's outer ring and holes.
    rings: Vec<Vec<(f64, f64)>>,
}

impl Region {
    /// Its name in `lang`, or its `name`.
    pub fn name_in(&self, lang: Lang) -> &str {
        self.names
            .iter()
            .find(|(l, _)| *l == lang)
            .map_or(self.name.as_str(), |(_, n)| n.as_str())
    }
}

/// The regions of the deployment's map.
#[derive(Debug, Clone)]
pub struct RegionMap {
    pub regions: Vec<Region>,
}

/// Why a region file was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegionFileError {
    #[error("the region file {0} cannot be read: {1}")]
    Unreadable(String, std::io::Error),
    #[error("the region file is not GeoJSON: {0}")]
    NotGeoJson(String),
    #[error("the region file must be a FeatureCollection")]
    NotACollection,
    #[error("the region file has no regions")]
    Empty,
    #[error("feature {index} of the region file: {problem}")]
    Feature { index: usize, problem: String },
}

fn property<'a>(feature: &'a geojson::Feature, name: &str) -> Option<&'a serde_json::Value> {
    feature.properties.as_ref().and_then(|p| p.get(name))
}

impl RegionMap {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Self, RegionFileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| RegionFileError::Unreadable(path.display().to_string(), e))?;
        Self::parse(&text)
    }

    /// Checks GeoJSON `text` (see the module's documentation).
    pub fn parse(text: &str) -> Result<Self, RegionFileError> {
        let geo: geojson::GeoJson = text
            .parse()
            .map_err(|e: geojson::Error| RegionFileError::NotGeoJson(e.to_string()))?;
        let geojson::GeoJson::FeatureCollection(collection) = geo else {
            return Err(RegionFileError::NotACollection);
        };
        let mut regions = Vec::new();
        let mut codes = std::collections::BTreeSet::new();
        for (index, feature) in collection.features.iter().enumerate() {
            let problem = |problem: &str| RegionFileError::Feature {
                index,
                problem: problem.to_owned(),
            };
            let code = property(feature, "code")
                .and_then(|v| v.as_str())
                .ok_or_else(|| problem("has no text property \"code\""))?;
            if code == "UNKNOWN" || RegionCode::parse("code", code).is_err() {
                return Err(problem(
                    "its code is not an ISO 3166-2 subdivision code (for example NG-LA)",
                ));
            }
            if !codes.insert(code.to_owned()) {
                return Err(problem("its code is used by another feature"));
            }
            let name = property(feature, "name")
                .and_then(|v| v.as_str())
                .filter(|n| !n.trim().is_empty() && n.chars().count() <= 200)
                .ok_or_else(|| problem("has no name (text of 1 to 200 characters)"))?;
            let mut names = Vec::new();
            for lang in Lang::ALL {
                match property(feature, &format!("name:{}", lang.tag())) {
                    None | Some(serde_json::Value::Null) => {}
                    Some(v) => names.push((
                        lang,
                        v.as_str()
                            .map(str::trim)
                            .filter(|n| !n.is_empty() && n.chars().count() <= 200)
                            .ok_or_else(|| {
                                problem(&format!(
                                    "its name:{} is not a text of 1 to 200 characters",
                                    lang.tag()
                                ))
                            })?
                            .to_owned(),
                    )),
                }
            }
            let population = match property(feature, "population") {
                None | Some(serde_json::Value::Null) => None,
                Some(v) => Some(
                    v.as_u64()
                        .filter(|p| *p > 0)
                        .ok_or_else(|| problem("its population is not a positive whole number"))?,
                ),
            };
            let polygons: Vec<Vec<Vec<Vec<f64>>>> =
                match feature.geometry.as_ref().map(|g| &g.value) {
                    Some(geojson::Value::Polygon(rings)) => vec![rings.clone()],
                    Some(geojson::Value::MultiPolygon(polygons)) => polygons.clone(),
                    _ => return Err(problem("its geometry is not a Polygon or MultiPolygon")),
                };
            let mut rings = Vec::new();
            for ring in polygons.into_iter().flatten() {
                let points: Option<Vec<(f64, f64)>> = ring
                    .iter()
                    .map(|p| match p.as_slice() {
                        [lon, lat, ..]
                            if (-180.0..=180.0).contains(lon) && (-90.0..=90.0).contains(lat) =>
                        {
                            Some((*lon, *lat))
                        }
                        _ => None,
                    })
                    .collect();
                let points = points.ok_or_else(|| {
                    problem("a position is not a longitude and latitude within range")
                })?;
                if points.len() < 4 {
                    return Err(problem("a ring has fewer than four positions"));
                }
                rings.push(points);
            }
            regions.push(Region {
                code: code.to_owned(),
                name: name.trim().to_owned(),
                names,
                population,
                rings,
            });
        }
        if regions.is_empty() {
            return Err(RegionFileError::Empty);
        }
        Ok(Self { regions })
    }

    /// The name of region `code` in `lang`, when the map has the region.
    pub fn name(&self, code: &str, lang: Lang) -> Option<&str> {
        self.regions
            .iter()
            .find(|r| r.code == code)
            .map(|r| r.name_in(lang))
    }

    /// The bounding box: (west, south, east, north).
    fn bounds(&self) -> (f64, f64, f64, f64) {
        let mut b = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for (lon, lat) in self.regions.iter().flat_map(|r| r.rings.iter().flatten()) {
            b = (b.0.min(*lon), b.1.min(*lat), b.2.max(*lon), b.3.max(*lat));
        }
        b
    }

    /// The map of `table` (a table by region): each region shaded by its
    /// published count's rate, a withheld count hatched and said, a region
    /// with no published row left blank; a legend of the shades below.
    /// `says` gives the words: (rate unit, withheld, no data).
    pub fn choropleth(
        &self,
        table: &ReleasedTable,
        title_id: &str,
        title: &str,
        says: &MapWords,
    ) -> String {
        let counts: BTreeMap<&str, Option<u64>> = table
            .rows
            .iter()
            .zip(&table.cells)
            .map(|(code, cells)| (code.as_str(), cells.first().copied().flatten()))
            .collect();
        let per_capita = self.regions.iter().all(|r| r.population.is_some());
        let rate = |region: &Region, count: u64| -> f64 {
            match region.population {
                Some(p) if per_capita => count as f64 * 100_000.0 / p as f64,
                _ => count as f64,
            }
        };
        let highest = self
            .regions
            .iter()
            .filter_map(|r| {
                counts
                    .get(r.code.as_str())
                    .copied()
                    .flatten()
                    .map(|c| rate(r, c))
            })
            .fold(0.0_f64, f64::max);
        let shade = |value: f64| -> usize {
            if highest <= 0.0 {
                0
            } else {
                (((value / highest) * SHADES as f64).ceil() as usize).clamp(1, SHADES) - 1
            }
        };
        let (west, south, east, north) = self.bounds();
        // Equirectangular, with longitude shrunk by the cosine of the
        // middle latitude so regions keep their shape.
        let squeeze = ((south + north) / 2.0).to_radians().cos().max(0.1);
        let span_x = ((east - west) * squeeze).max(1e-9);
        let span_y = (north - south).max(1e-9);
        let scale = (WIDTH - 20.0) / span_x;
        let map_height = span_y * scale + 20.0;
        let legend_top = map_height + 10.0;
        let height = legend_top + 84.0;
        let project = |(lon, lat): (f64, f64)| -> (f64, f64) {
            (
                10.0 + (lon - west) * squeeze * scale,
                10.0 + (north - lat) * scale,
            )
        };
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart map\" viewBox=\"0 0 {WIDTH} {height:.0}\" \
             role=\"img\" aria-labelledby=\"{title_id}\"><title id=\"{title_id}\">{}</title>\
             <defs><pattern id=\"{title_id}-hatch\" width=\"8\" height=\"8\" patternUnits=\"userSpaceOnUse\" \
             patternTransform=\"rotate(45)\"><rect width=\"8\" height=\"8\" class=\"hatch-ground\"/>\
             <line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"8\" class=\"hatch-line\"/></pattern></defs>",
            escape_html(title)
        );
        for region in &self.regions {
            let mut d = String::new();
            for ring in &region.rings {
                for (i, point) in ring.iter().enumerate() {
                    let (x, y) = project(*point);
                    d.push_str(&format!("{}{x:.1},{y:.1}", if i == 0 { "M" } else { "L" }));
                }
                d.push('Z');
            }
            let (class, fill, said) = match counts.get(region.code.as_str()) {
                Some(Some(count)) => {
                    let value = rate(region, *count);
                    let said = if per_capita {
                        format!("{count} ({value:.1} {})", says.per_100k)
                    } else {
                        count.to_string()
                    };
                    (
                        format!("region shade-{}", shade(value)),
                        String::new(),
                        said,
                    )
                }
                Some(None) => (
                    "region withheld-region".to_owned(),
                    format!(" fill=\"url(#{title_id}-hatch)\""),
                    says.withheld.clone(),
                ),
                None => (
                    "region no-data".to_owned(),
                    String::new(),
                    says.no_data.clone(),
                ),
            };
            svg.push_str(&format!(
                "<path d=\"{d}\" class=\"{class}\"{fill}><title>{}: {}</title></path>",
                escape_html(region.name_in(says.lang)),
                escape_html(&said)
            ));
        }
        // The legend: the shades' ranges, then the withheld pattern.
        // The legend: the shades' ranges (with a decimal when they are
        // small), then the withheld pattern and the blank, then the unit.
        let step = highest / SHADES as f64;
        let decimals = if highest < 10.0 { 1 } else { 0 };
        for i in 0..SHADES {
            let x = 10.0 + i as f64 * 108.0;
            let (low, high) = (step * i as f64, step * (i + 1) as f64);
            svg.push_str(&format!(
                "<rect x=\"{x}\" y=\"{legend_top}\" width=\"24\" height=\"16\" class=\"region shade-{i}\"/>\
                 <text x=\"{}\" y=\"{}\" class=\"legend\">{low:.decimals$}–{high:.decimals$}</text>",
                x + 28.0,
                legend_top + 13.0
            ));
        }
        let second = legend_top + 26.0;
        svg.push_str(&format!(
            "<rect x=\"10\" y=\"{second}\" width=\"24\" height=\"16\" class=\"region withheld-region\" \
             fill=\"url(#{title_id}-hatch)\"/><text x=\"38\" y=\"{}\" class=\"legend\">{}</text>\
             <rect x=\"226\" y=\"{second}\" width=\"24\" height=\"16\" class=\"region no-data\"/>\
             <text x=\"254\" y=\"{}\" class=\"legend\">{}</text>\
             <text x=\"10\" y=\"{}\" class=\"legend\">{}</text></svg>",
            second + 13.0,
            escape_html(&says.withheld),
            second + 13.0,
            escape_html(&says.no_data),
            second + 44.0,
            escape_html(if per_capita { &says.rate_unit } else { &says.count_unit })
        ));
        svg
    }
}

/// The words a map says, in the page's language.
pub struct MapWords {
    /// The page's language, for the regions' names.
    pub lang: Lang,
    /// "per 100,000 inhabitants", after a rate.
    pub per_100k: String,
    pub withheld: String,
    pub no_data: String,
    /// The legend's unit: survivors per 100,000 inhabitants.
    pub rate_unit: String,
    /// The legend's unit when the map has no populations: survivors.
    pub count_unit: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use exchange_schema::statistics::{CountTable, Protection, protect, table};

    const MAP: &str = r#"{"type":"FeatureCollection","features":[
      {"type":"Feature","properties":{"code":"XZ-N","name":"North <hills>","population":200000},
       "geometry":{"type":"Polygon","coordinates":[[[0,1],[1,1],[1,2],[0,2],[0,1]]]}},
      {"type":"Feature","properties":{"code":"XZ-S","name":"South","name:fr":"Sud","population":100000},
       "geometry":{"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[1,1],[0,1],[0,0]]]]}},
      {"type":"Feature","properties":{"code":"XZ-E","name":"East","population":50000},
       "geometry":{"type":"Polygon","coordinates":[[[1,0],[2,0],[2,2],[1,2],[1,0]]]}}]}"#;

    fn words() -> MapWords {
        MapWords {
            lang: Lang::En,
            per_100k: "per 100,000".into(),
            withheld: "withheld".into(),
            no_data: "no data".into(),
            rate_unit: "Survivors per 100,000 inhabitants".into(),
            count_unit: "Survivors".into(),
        }
    }

    #[test]
    fn a_region_is_shaded_by_its_rate_a_withheld_one_hatched_and_names_escaped() {
        let map = RegionMap::parse(MAP).unwrap();
        let spec = table("survivors-by-region").unwrap();
        let mut counts = CountTable::new(spec.id);
        // North: 40 in 200,000 (20 per 100,000); South: 40 in 100,000
        // (40, the highest); East: 3, withheld.
        counts.cells.insert(vec!["XZ-N".into()], 40);
        counts.cells.insert(vec!["XZ-S".into()], 40);
        counts.cells.insert(vec!["XZ-E".into()], 3);
        // A region the map does not draw, withheld with East so that the
        // total does not give East away.
        counts.cells.insert(vec!["XZ-Q".into()], 4);
        let (released, _) = protect(spec, &counts, Protection::default());
        let svg = map.choropleth(&released, "m", "By <region>", &words());
        assert!(svg.contains("By &lt;region&gt;"));
        assert!(
            svg.contains("North &lt;hills&gt;: 40 (20.0 per 100,000)"),
            "{svg}"
        );
        assert!(
            svg.contains("class=\"region shade-2\""),
            "North, half the highest rate"
        );
        assert!(svg.contains("South: 40 (40.0 per 100,000)"));
        assert!(
            svg.contains("class=\"region shade-4\""),
            "South, the highest"
        );
        assert!(svg.contains("East: withheld"));
        assert!(svg.contains("fill=\"url(#m-hatch)\""));
        assert!(!svg.contains("<hills>"));

        // In French, South has its French name; the others, their name.
        let french = map.choropleth(
            &released,
            "m",
            "Par région",
            &MapWords {
                lang: Lang::Fr,
                ..words()
            },
        );
        assert!(french.contains("Sud: 40"), "{french}");
        assert!(french.contains("East: withheld"), "{french}");
        assert_eq!(map.name("XZ-S", Lang::Fr), Some("Sud"));
        assert_eq!(map.name("XZ-S", Lang::Ar), Some("South"));
    }

    #[test]
    fn a_broken_region_file_is_refused_naming_the_feature() {
        let cases = [
            ("[]", "not a collection"),
            (r#"{"type":"FeatureCollection","features":[]}"#, "empty"),
            (&MAP.replace("\"XZ-S\"", "\"XZ-N\""), "duplicate code"),
            (&MAP.replace("\"XZ-E\"", "\"East\""), "not a code"),
            (&MAP.replace("\"Sud\"", "\"  \""), "an empty name:fr"),
            (&MAP.replace("\"Sud\"", "7"), "a name:fr not a text"),
            (
                &MAP.replace("\"population\":50000", "\"population\":-3"),
                "negative population",
            ),
            (&MAP.replace(",\"name\":\"South\"", ""), "no name"),
            (
                &MAP.replace("[[[1,0],[2,0],[2,2],[1,2],[1,0]]]", "[[[1,0],[2,0],[1,0]]]"),
                "short ring",
            ),
            (
                &MAP.replace("[[[1,0],[2,0]", "[[[1,0],[200,0]"),
                "out of range",
            ),
            ("{", "not JSON"),
        ];
        for (text, why) in cases {
            assert!(RegionMap::parse(text).is_err(), "{why}");
        }
        let err = RegionMap::parse(&MAP.replace("\"XZ-E\"", "\"East\"")).unwrap_err();
        assert!(
            err.to_string().starts_with("feature 2 of the region file"),
            "{err}"
        );
    }
}
