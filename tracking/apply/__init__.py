"""3. Applying: workers lock instances, run the pure ``engine`` (the spec's f(event, state)) over their
open events and write the outcome back (``applier``)."""
