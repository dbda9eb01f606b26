// Countries of the bundled world atlas (world-atlas, Natural Earth 1:110m) and where each one is:
// shared by the flat map and the globe, so both place a country's live markers at the same point.
import { geoCentroid } from "d3-geo";
import { feature } from "topojson-client";
import countries from "i18n-iso-countries";
import world from "world-atlas/countries-110m.json";

export const shapes = feature(world, world.objects.countries).features.filter((f) => f.properties.name !== "Antarctica");
const byNumeric = new Map(shapes.map((f) => [String(f.id).padStart(3, "0"), f]));
const centres = new Map();

/** ISO 3166 alpha-2 → the atlas's numeric id (as its features are keyed). */
export function numeric(alpha2) {
  return alpha2 ? countries.alpha2ToNumeric(alpha2.toUpperCase()) : undefined;
}

/** [longitude, latitude] of a country's centre, or null when the atlas has no such country. */
export function centre(alpha2) {
  if (!centres.has(alpha2)) {
    const shape = byNumeric.get(numeric(alpha2));
    centres.set(alpha2, shape ? geoCentroid(shape) : null);
  }
  return centres.get(alpha2);
}
