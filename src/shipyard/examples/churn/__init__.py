"""The telco-style churn example: a seeded data generator and a project template."""
