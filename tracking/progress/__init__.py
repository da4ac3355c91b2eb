"""4. What people see: an instance's milestones and history for API readers and the customer's
page behind a signed link."""
