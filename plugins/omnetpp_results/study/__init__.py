"""The parameter study: a config's runs told apart by their iteration variables, and its results
averaged over the repetitions with Student's t confidence intervals."""
