# Public statistics
stats-title = Electronic guarantee statistics
stats-lede = How electronic guarantees replace cash bid bonds. The figures are totals since the exchange began, aggregates only: nothing about any bidder.
stats-issued = Guarantees issued
stats-enterprises = Enterprises served
stats-projects = Projects served
stats-amount = Bonds kept out of cash (CNY)
stats-by-month = By month
stats-by-kind = By kind of issuer
stats-month = Month
stats-kind = Kind of issuer
stats-axis-guarantees = Guarantees
stats-axis-yuan = Bonds (CNY)
stats-json = Get these figures as JSON
kind-bank = Bank guarantees
kind-insurer = Surety insurance
kind-guarantor = Guarantee companies
