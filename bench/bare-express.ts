import express from 'express';

// The baseline for the ingest benchmark: express 5 with the same JSON parser settings as changepager's ingest
// route, answering as soon as the body is parsed. Nothing is validated, stored or decided.
const app = express();
app.disable('x-powered-by');
app.post('/v1/alertmanager', express.json({ limit: 5 * 1024 * 1024, strict: true, type: () => true }), (req, res) => {
  const body = req.body as { alerts?: unknown[] };
  res.json({ accepted: Array.isArray(body.alerts) ? body.alerts.length : 0 });
});
const port = Number(process.env.PORT ?? 0);
const server = app.listen(port, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : port}\n`);
});
process.once('SIGTERM', () => server.close(() => process.exit(0)));
