"""What tests (and bench/) share: processes and ports, the test ring and secret, a Vite HMR
client, and clusters of real routers and nodes."""
