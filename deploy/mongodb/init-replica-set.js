// The one-shot `mongodb-init` service: makes the server a single-node replica set "rs0"
// (change streams wake workers and event streams at once), and does nothing when it is one
// already. The member's host is the service name, which every container resolves.
try {
  const status = rs.status();
  print(`replica set ${status.set} already initiated`);
} catch (error) {
  if (error.codeName !== "NotYetInitialized") throw error;
  rs.initiate({ _id: "rs0", members: [{ _id: 0, host: "mongodb:27017" }] });
  print("initiated replica set rs0");
}
// Wait for the member to become primary, so what starts next can write.
while (!db.hello().isWritablePrimary) sleep(200);
