// Validate ServiceMonitor and PrometheusRule objects (JSON array on stdin) against the Prometheus Operator's
// CRD schemas, as packaged by @kubernetes-models/prometheus-operator. Prints one line per problem; exit 1 on any.
import { PrometheusRule, ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

const kinds = { PrometheusRule, ServiceMonitor };
let input = "";
for await (const chunk of process.stdin) input += chunk;
let failed = 0;
for (const obj of JSON.parse(input)) {
  const Kind = kinds[obj.kind];
  if (!Kind) {
    console.log(`${obj.kind}: not a kind this validator knows`);
    failed += 1;
    continue;
  }
  try {
    new Kind(obj).validate();
    console.log(`${obj.kind}/${obj.metadata.name}: valid`);
  } catch (err) {
    console.log(`${obj.kind}/${obj.metadata.name}: ${err.message}`);
    failed += 1;
  }
}
process.exit(failed ? 1 : 0);
