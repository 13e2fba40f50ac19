
I


service.name

checkout)'*
helloJ	
R	