// PostGraphile v5 (grafast) as one would run it in production on this machine: the amber
// preset, one worker per core (node:cluster, sharing the port), no GraphiQL, no watch mode,
// no explain, over the harness's Unix socket. benches/run starts it with the Node.js 22 that
// this folder's package.json installs.
//
//   node server.mjs CONNECTION_STRING SCHEMA HOST PORT WORKERS
import cluster from "node:cluster";
import { createServer } from "node:http";
import { postgraphile } from "postgraphile";
import { grafserv } from "postgraphile/grafserv/node";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { makePgService } from "postgraphile/adaptors/pg";

const [connectionString, schema, host, port, workers] = process.argv.slice(2);

if (cluster.isPrimary && Number(workers) > 1) {
  for (let i = 0; i < Number(workers); i++) cluster.fork();
  cluster.on("exit", (worker, code, signal) => {
    console.error(`worker ${worker.process.pid} ended (${signal || code})`);
    process.exit(1);
  });
} else {
  const preset = {
    extends: [PostGraphileAmberPreset],
    pgServices: [makePgService({ connectionString, schemas: [schema] })],
    grafserv: { graphiql: false, watch: false },
    grafast: { explain: false },
  };
  const serv = postgraphile(preset).createServ(grafserv);
  const server = createServer();
  server.on("error", (e) => {
    console.error(e);
    process.exit(1);
  });
  await serv.addTo(server);
  server.listen(Number(port), host);
}
