// Token decimals as GET /api/pools reports them: the routing event's quotes are in base units.

const decimals = new Map();

export function learnDecimals(pools) {
  for (const pool of pools) for (const [symbol, places] of Object.entries(pool.decimals || {})) decimals.set(symbol, places);
}

export function decimalsOf(symbol) {
  return decimals.get(symbol);
}

export function knownSymbols() {
  return [...decimals.keys()].sort();
}
