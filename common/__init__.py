"""What every CardFlow layer may use: the error table, text folding, ICAO 9303 primitives, typed configuration
and parameter validation. It imports nothing else of CardFlow's."""
