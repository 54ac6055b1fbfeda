"""Studies: several runs trained and compared under one budget, with one report."""
