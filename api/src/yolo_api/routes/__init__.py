"""HTTP routes, thin: validate, call the backend, render the envelope."""
