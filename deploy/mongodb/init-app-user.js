// Runs once, on the first start of an empty MongoDB volume: creates the least-privilege
// application user the backend connects as (readWrite on its own database only).
const password = fs.readFileSync("/run/secrets/mongodb_app_password", "utf8").trim();
db.getSiblingDB("drift_monitor").createUser({
  user: "drift",
  pwd: password,
  roles: [{ role: "readWrite", db: "drift_monitor" }],
});
